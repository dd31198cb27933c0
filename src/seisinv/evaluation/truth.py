"""Where true velocities come from: a labelled dataset or another prediction directory.

Evaluation, ensemble weight fits and baselines need ``(id, velocity, family)`` for labelled
samples. This module reads them from either a dataset (anything ``seisinv.data.open_dataset``
opens, or a ``SampleSource``) or a prediction directory (a ``manifest.json`` beside
``velocity/``), so a reference model's predictions can also serve as the "truth".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seisinv.errors import DataError
from seisinv.survey import Survey


@dataclass(frozen=True)
class TruthRecord:
    """One labelled sample: id, (nz, nx) velocity in survey units (depth first), family or None."""

    id: str
    velocity: np.ndarray
    family: str | None = None


def source_ids(source) -> list[str]:
    """The ids of a ``SampleSource`` (``ids`` may be a list attribute or a method)."""
    ids = source.ids
    return list(ids() if callable(ids) else ids)


def is_prediction_dir(path: str | Path) -> bool:
    """True when ``path`` is a seisinv prediction directory (has ``manifest.json``)."""
    return (Path(path) / "manifest.json").is_file() and (Path(path) / "velocity").is_dir()


def open_source(path_or_source, survey: Survey | str | None):
    """A ``SampleSource`` for a dataset path (or the source itself when one is given)."""
    if not isinstance(path_or_source, (str, Path)):
        return path_or_source
    from seisinv.data import open_dataset

    return open_dataset(path_or_source, survey) if survey is not None else open_dataset(path_or_source)


def iter_truth(path_or_source, survey: Survey | None = None) -> Iterator[TruthRecord]:
    """Labelled samples of a dataset or prediction directory, in id order.

    Args:
        path_or_source: a dataset path, a ``SampleSource``, or a prediction directory.
        survey: the survey the data belong to (for datasets that need it).

    Raises:
        DataError: a dataset sample has no velocity (unlabelled test data).
    """
    if isinstance(path_or_source, (str, Path)) and is_prediction_dir(path_or_source):
        from seisinv.inference.store import PredictionStore

        store = PredictionStore(path_or_source)
        for sample_id in store.ids():
            yield TruthRecord(sample_id, store.read(sample_id), None)
        return
    source = open_source(path_or_source, survey)
    for index in range(len(source)):
        sample = source[index]
        if sample.velocity is None:
            raise DataError(
                f"{path_or_source}: sample {sample.id!r} has no velocity; truth needs labelled data"
            )
        yield TruthRecord(sample.id, np.asarray(sample.velocity), sample.family or None)


def load_truth(path_or_source, survey: Survey | None = None) -> dict[str, TruthRecord]:
    """All labelled samples as ``id -> TruthRecord`` (kept in memory: for validation-sized sets)."""
    return {record.id: record for record in iter_truth(path_or_source, survey)}
