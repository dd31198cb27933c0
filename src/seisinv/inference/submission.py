"""Challenge submission files: writers that refuse invalid content, and readers for round trips.

Formats (``FORMATS``):

- ``speed-structure`` (ThinkOnward Speed & Structure): one uncompressed ``.npz``; each key is a
  sample id and each value that sample's velocity in the on-disk axis order
  (``survey.velocity_to_disk``: (300 horizontal, 1259 depth) for the preset), float64, km/s.
- ``kaggle-gwi`` (Yale/UNC-CH Geophysical Waveform Inversion): a CSV with header
  ``oid_ypos,x_1,x_3,...,x_69``; per sample one row per depth index ``row`` named
  ``{id}_y_{row}``, holding the velocity in m/s at the odd horizontal indices 1, 3, ..., nx - 1.

Writers take ``predictions``, a mapping ``id -> (nz, nx)`` velocity in survey units (internal
layout, depth first), and the survey. Before anything is kept they check: ids against the
expected test ids (none missing, none extra), each map's shape, finiteness and value range
(the survey's [vmin, vmax]). The file is streamed to a temporary name and renamed only when every
sample passed, so an invalid submission never appears on disk; the ``DataError`` lists every
problem found (the first few of each kind).

A format fixes the units and the on-disk axis order of the maps, not the grid: a reduced survey
with the challenge's conventions (tests, rehearsals at small scale) writes a valid file of its own
grid, and ``challenge_grid_note`` says that the challenge will not score it.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from seisinv.errors import DataError
from seisinv.io import atomic_open, is_disk_full
from seisinv.outdir import OutputError
from seisinv.survey import OPENFWI, SPEED_STRUCTURE, Survey

FORMATS = ("speed-structure", "kaggle-gwi")
# The preset whose grid, units and layout each format is defined for.
FORMAT_SURVEYS: dict[str, Survey] = {"speed-structure": SPEED_STRUCTURE, "kaggle-gwi": OPENFWI}
# Predictions may overshoot the survey range by this fraction of it (float rounding in models
# bounded by a sigmoid, interpolation in ensembles) before they are refused.
RANGE_TOLERANCE = 1e-4
MAX_LISTED = 5


class StoreMapping(Mapping):
    """A read-only ``id -> (nz, nx) velocity`` view of a ``PredictionStore`` that loads lazily."""

    def __init__(self, store) -> None:
        self.store = store
        self._ids = store.ids()

    def __getitem__(self, sample_id: str) -> np.ndarray:
        if not self.store.has(sample_id):
            raise KeyError(sample_id)
        return self.store.read(sample_id)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


def _listed(items: Iterable[str]) -> str:
    items = sorted(items)
    shown = ", ".join(repr(i) for i in items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def check_ids(ids: Iterable[str], expected_ids: Iterable[str] | None) -> list[str]:
    """Problems (as sentences) comparing prediction ids with the test set's ids; [] when equal."""
    if expected_ids is None:
        return []
    have, want = set(ids), set(expected_ids)
    problems = []
    if want - have:
        problems.append(f"{len(want - have)} test sample(s) have no prediction: {_listed(want - have)}")
    if have - want:
        problems.append(f"{len(have - want)} prediction(s) are not in the test set: {_listed(have - want)}")
    return problems


def check_velocity(sample_id: str, velocity: np.ndarray, survey: Survey) -> list[str]:
    """Problems with one internal-layout (nz, nx) prediction in survey units; [] when valid."""
    velocity = np.asarray(velocity)
    if velocity.shape != survey.velocity_shape:
        return [f"{sample_id!r}: shape {velocity.shape}, expected {survey.velocity_shape} (nz, nx)"]
    if not np.issubdtype(velocity.dtype, np.floating):
        return [f"{sample_id!r}: dtype {velocity.dtype}, expected floating point"]
    # The survey's one velocity check, with a near-zero range tolerance: a submission is scored
    # as is, so values outside [vmin, vmax] are a bug upstream.
    return [f"{sample_id!r}: {p}" for p in survey.velocity_problems(velocity, RANGE_TOLERANCE)]


def _finish(problems: list[str], path: Path) -> None:
    if problems:
        raise DataError(f"{path}: refusing to write an invalid submission: " + "; ".join(problems))


def _valid_maps(
    predictions: Mapping[str, np.ndarray],
    expected_ids: list[str] | None,
    survey: Survey,
    problems: list[str],
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(id, (nz, nx) velocity)`` in id order while no problem has been found; every
    invalid map's problems are appended to ``problems`` (so one pass reports them all)."""
    ids = sorted(predictions) if expected_ids is None else sorted(set(expected_ids))
    for sample_id in ids:
        velocity = np.asarray(predictions[sample_id])
        problems += check_velocity(sample_id, velocity, survey)
        if not problems:
            yield sample_id, velocity


def write_speed_structure(
    path: str | Path,
    predictions: Mapping[str, np.ndarray],
    survey: Survey = SPEED_STRUCTURE,
    expected_ids: Iterable[str] | None = None,
) -> Path:
    """Write a Speed & Structure submission: uncompressed .npz, ``id -> disk-layout float64``.

    Args:
        path: the .npz file to create (replaced atomically).
        predictions: ``id -> (nz, nx)`` velocity in survey units (km/s for the preset), depth first.
        survey: the survey the predictions belong to; values are written in
            ``survey.velocity_to_disk`` order, (300 horizontal, 1259 depth) for the preset.
        expected_ids: the test set's sample ids; None skips the completeness check.

    Raises:
        DataError: missing or extra ids, or any map with the wrong shape, NaN/inf, or values
            outside [vmin, vmax]; nothing is written then.
    """
    path = Path(path)
    expected_ids = None if expected_ids is None else list(expected_ids)
    problems = check_ids(predictions, expected_ids)
    _finish(problems, path)
    with atomic_open(path, "wb") as handle:
        # Streamed entry by entry (as np.savez does) so a large test set never sits in memory.
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for sample_id, velocity in _valid_maps(predictions, expected_ids, survey, problems):
                disk = np.ascontiguousarray(survey.velocity_to_disk(velocity.astype(np.float64)))
                with zf.open(f"{sample_id}.npy", "w", force_zip64=True) as entry:
                    np.lib.format.write_array(entry, disk, allow_pickle=False)
        _finish(problems, path)
    return path


def read_speed_structure(path: str | Path, survey: Survey = SPEED_STRUCTURE) -> dict[str, np.ndarray]:
    """Read a Speed & Structure .npz back as ``id -> (nz, nx)`` float64 in survey units."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: survey.velocity_from_disk(npz[key]) for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz submission ({exc})") from None


def kaggle_columns(survey: Survey = OPENFWI) -> list[int]:
    """The horizontal indices Kaggle GWI scores: the odd ones, 1, 3, ..., nx - 1."""
    return list(range(1, survey.nx, 2))


def write_kaggle_gwi(
    path: str | Path,
    predictions: Mapping[str, np.ndarray],
    survey: Survey = OPENFWI,
    expected_ids: Iterable[str] | None = None,
) -> Path:
    """Write a Kaggle GWI CSV: rows ``{id}_y_{row}`` (row = depth index), columns ``x_1, x_3, ...``.

    Args:
        path: the .csv file to create (replaced atomically).
        predictions: ``id -> (nz, nx)`` velocity in survey units, depth first (written in m/s).
        survey: the survey of the predictions (OpenFWI: 70 x 70, m/s).
        expected_ids: the test set's sample ids; None skips the completeness check.

    Raises:
        DataError: as :func:`write_speed_structure`; nothing is written then.
    """
    path = Path(path)
    expected_ids = None if expected_ids is None else list(expected_ids)
    problems = check_ids(predictions, expected_ids)
    _finish(problems, path)
    columns = kaggle_columns(survey)
    with atomic_open(path, "w") as handle:
        handle.write(",".join(["oid_ypos"] + [f"x_{c}" for c in columns]) + "\n")
        for sample_id, velocity in _valid_maps(predictions, expected_ids, survey, problems):
            values = velocity[:, columns].astype(np.float64) * survey.to_mps
            buffer = io.StringIO()
            for row, row_values in enumerate(values):
                buffer.write(f"{sample_id}_y_{row},")
                buffer.write(",".join(f"{v:.7g}" for v in row_values))
                buffer.write("\n")
            handle.write(buffer.getvalue())
        _finish(problems, path)
    return path


def read_kaggle_gwi(path: str | Path) -> dict[str, np.ndarray]:
    """Read a Kaggle GWI CSV back as ``id -> (rows, scored columns)`` float64 m/s, rows in order."""
    rows: dict[str, dict[int, list[float]]] = {}
    try:
        with open(path, newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            if header[0] != "oid_ypos":
                raise DataError(f"{path}: first column is {header[0]!r}, expected 'oid_ypos'")
            for record in reader:
                sample_id, _, row = record[0].rpartition("_y_")
                rows.setdefault(sample_id, {})[int(row)] = [float(v) for v in record[1:]]
    except (OSError, ValueError, StopIteration) as exc:
        raise DataError(f"{path}: not a readable Kaggle GWI submission ({exc})") from None
    return {
        sample_id: np.array([by_row[r] for r in sorted(by_row)], dtype=np.float64)
        for sample_id, by_row in rows.items()
    }


def challenge_grid_note(fmt: str, survey: Survey) -> str | None:
    """A sentence when ``survey``'s grid differs from the challenge's of format ``fmt``, else None.

    Such a file is valid for its own grid (reduced surveys) but will not be scored by the challenge.
    """
    reference = FORMAT_SURVEYS[fmt]
    if survey.velocity_shape == reference.velocity_shape:
        return None
    return (
        f"grid {survey.velocity_shape} (nz, nx) of survey {survey.name!r} differs from the "
        f"challenge's {reference.velocity_shape}: the file is valid for this survey but the "
        f"challenge will not score it"
    )


def write_submission(
    fmt: str,
    path: str | Path,
    predictions: Mapping[str, np.ndarray],
    survey: Survey,
    expected_ids: Iterable[str] | None = None,
) -> Path:
    """Write ``predictions`` in format ``fmt`` (one of ``FORMATS``); see the format's writer.

    Raises:
        DataError: unknown format, a survey whose units or on-disk axis order do not match the
            format, or invalid predictions.
    """
    if fmt not in FORMATS:
        raise DataError(f"unknown submission format {fmt!r}; known: {', '.join(FORMATS)}")
    reference = FORMAT_SURVEYS[fmt]
    if (survey.units, survey.velocity_axes) != (reference.units, reference.velocity_axes):
        raise DataError(
            f"format {fmt!r} needs maps in {reference.units} stored with velocity_axes "
            f"{reference.velocity_axes!r} (survey {reference.name!r}); the predictions are in "
            f"{survey.units} with velocity_axes {survey.velocity_axes!r} (survey {survey.name!r})"
        )
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"path {path}: is a folder; give the submission file to write",
                          argument="path")
    if len(predictions) == 0:
        raise DataError(f"{path}: refusing to write an empty submission: the predictions hold "
                        "no sample")
    writer = write_speed_structure if fmt == "speed-structure" else write_kaggle_gwi
    try:
        return writer(path, predictions, survey, expected_ids)
    except OSError as exc:
        if is_disk_full(exc):
            raise OutputError(f"path {path}: disk full while writing the submission; nothing "
                              "was written", argument="path") from None
        raise OutputError(f"path {path}: cannot write ({exc.strerror or exc})",
                          argument="path") from None
