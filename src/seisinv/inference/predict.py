"""Predict velocity maps for every sample of a dataset, with optional test-time augmentation.

``predict(run, source, store)`` reads raw gathers from a ``SampleSource`` in batches, runs the
trained model (``LoadedRun.predict`` applies the run's fitted pipeline) on every augmented view,
maps each prediction back to the original frame, averages the views and writes (nz, nx) float32
maps in survey units to a ``PredictionStore``. Samples already in the store are skipped, so an
interrupted job resumes where it stopped.

Test-time augmentations (``flip``, ``noise``, ``scale``, each with an optional weight such as
``noise:0.5``) are the views of ``seisinv.inference.tta``; the final map is the weighted mean of
the back-mapped views (the plain mean when no weight is given).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seisinv.errors import SeisinvError
from seisinv.inference.store import PredictionStore
from seisinv.inference.tta import (  # noqa: F401 - re-exported: the TTA views' old home
    NOISE_DRAWS,
    NOISE_LEVEL,
    SCALE_FACTORS,
    TTA,
    View,
    parse_tta,
    tta_views,
)
from seisinv.survey import Survey


def predict_batch(run, gathers: np.ndarray, ids: Sequence[str], views: Sequence[View]) -> np.ndarray:
    """Weighted mean over views of the back-mapped predictions of one batch.

    Args:
        run: anything with ``predict(gathers) -> (b, nz, nx)`` tensor/array in survey units
            (a ``seisinv.training.LoadedRun``).
        gathers: (b, shots, time, receivers) raw float32 gathers.
        ids: the b sample ids (seed the noise view).

    Returns:
        (b, nz, nx) float32 velocity in survey units, depth first.
    """
    total = None
    for view in views:
        predicted = np.asarray(run.predict(view.forward(gathers, ids)), dtype=np.float64)
        back = view.weight * view.inverse(predicted)
        total = back if total is None else total + back
    return (total / sum(view.weight for view in views)).astype(np.float32)


def predict(
    run,
    source,
    store: PredictionStore,
    tta: Sequence[str] = (),
    batch: int = 8,
    progress: bool = True,
) -> int:
    """Predict every sample of ``source`` not yet in ``store`` (resumable) and write it there.

    Args:
        run: a ``LoadedRun`` (``seisinv.training.load_run``) or any object with ``predict`` and
            ``survey``.
        source: a ``SampleSource`` whose gathers are (shots, time, receivers) in the run's survey.
        store: the output ``PredictionStore`` (same survey as the run).
        tta: augmentation entries (``"flip"``, ``"noise:0.5"``; see ``seisinv.inference.tta``);
            () for the plain prediction.
        batch: samples per model call (each view is one call).

    Returns:
        The number of samples predicted by this call.
    """
    import torch

    from seisinv.runtime import progress_bar

    survey: Survey = run.survey
    if source.survey.gather_shape != survey.gather_shape:
        raise SeisinvError(
            f"the data's gathers are {source.survey.gather_shape} (survey {source.survey.name!r}) "
            f"but the model was trained on {survey.gather_shape} (survey {survey.name!r})"
        )
    if store.survey.velocity_shape != survey.velocity_shape:
        raise SeisinvError(
            f"{store.root}: holds {store.survey.velocity_shape} maps, the model predicts "
            f"{survey.velocity_shape}"
        )
    if batch < 1:
        raise SeisinvError(f"batch size {batch} must be at least 1")
    views = tta_views(tta, survey)
    ids = list(source.ids)
    todo = [i for i, sample_id in enumerate(ids) if not store.has(sample_id)]
    with torch.inference_mode(), progress_bar(disable=not progress) as bar:
        task = bar.add_task(f"predict ({len(views)} view{'s' * (len(views) > 1)})", total=len(todo))
        for start in range(0, len(todo), batch):
            part = todo[start : start + batch]
            part_ids = [ids[i] for i in part]
            gathers = np.stack([source[i].gathers for i in part]).astype(np.float32, copy=False)
            velocity = predict_batch(run, gathers, part_ids, views)
            for sample_id, v in zip(part_ids, velocity, strict=True):
                store.write(sample_id, v)
            bar.advance(task, len(part))
    return len(todo)


def open_prediction_store(out_dir, run, tta: Sequence[str]) -> PredictionStore:
    """The output store for ``run``'s predictions, recording the checkpoint and TTA used.

    Raises:
        DataError: ``out_dir`` already holds predictions made with another checkpoint, weights
            or TTA: resuming into it would mix two models' answers under one manifest.
    """
    checkpoint = getattr(run, "checkpoint", None)
    info = {
        # Absolute, so that a rerun from another working directory is recognised as the same.
        "checkpoint": str(Path(checkpoint).resolve()) if checkpoint else "",
        "weights": getattr(run, "which", ""),
        "step": getattr(run, "step", None),
        "tta": list(tta),
    }
    store = PredictionStore(out_dir, run.survey, source=f"predict {info['checkpoint']}", info=info)
    store.refuse_other_settings(info, "two models' answers")
    return store
