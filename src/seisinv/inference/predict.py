"""Predict velocity maps for every sample of a dataset, with optional test-time augmentation.

``predict(run, source, store)`` reads raw gathers from a ``SampleSource`` in batches, runs the
trained model (``LoadedRun.predict`` applies the run's fitted pipeline) on every augmented view,
maps each prediction back to the original frame, averages the views and writes (nz, nx) float32
maps in survey units to a ``PredictionStore``. Samples already in the store are skipped, so an
interrupted job resumes where it stopped.

Test-time augmentations (``flip``, ``noise``, ``scale``, ``flip_slots``, ``flip_receivers``, each
with an optional weight such as ``noise:0.5``) are the views of ``seisinv.inference.tta``; the
final map is the weighted mean of the back-mapped views (the plain mean when no weight is given).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seisinv.errors import SeisinvError
from seisinv.inference.store import PREDICTION_WRITES, PredictionStore
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


# Samples per model call on a CPU when no batch is given (a larger batch is not faster there).
CPU_PREDICT_BATCH = 16
# Largest automatic batch on a GPU, and the share of its free memory one call may use.
MAX_PREDICT_BATCH = 512
PREDICT_MEMORY_FRACTION = 0.5


def auto_predict_batch(run) -> int:
    """Samples per model call for ``run`` on its device.

    CPU: ``CPU_PREDICT_BATCH``. CUDA: one probe call on two samples of zeros measures the peak
    memory a sample adds; the batch is what ``PREDICT_MEMORY_FRACTION`` of the free memory holds,
    at most ``MAX_PREDICT_BATCH``. TTA views are separate calls, so they do not add to it.
    """
    import torch

    device = torch.device(getattr(run, "device", "cpu"))
    if device.type != "cuda":
        return CPU_PREDICT_BATCH
    probe = np.zeros((2, *run.survey.gather_shape), np.float32)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    with torch.inference_mode():
        run.predict(probe)
    torch.cuda.synchronize(device)
    per_sample = max(1, (torch.cuda.max_memory_allocated(device) - before) // 2)
    free, _ = torch.cuda.mem_get_info(device)
    return max(1, min(MAX_PREDICT_BATCH, int(PREDICT_MEMORY_FRACTION * free) // per_sample))


def predict(
    run,
    source,
    store: PredictionStore,
    tta: Sequence[str] = (),
    batch: int | None = 8,
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
        batch: samples per model call (each view is one call); None sizes it from the
            device's memory (``auto_predict_batch``).

    Under ``torchrun`` each rank predicts every ``WORLD_SIZE``-th sample (on its own GPU with
    ``device="auto"``) into the same store.

    Returns:
        The number of samples predicted by this call.
    """
    import torch

    from seisinv.runtime import dist_info, progress_bar

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
    if batch is not None and batch < 1:
        raise SeisinvError(f"batch size {batch} must be at least 1")
    views = tta_views(tta, survey)
    batch = batch or auto_predict_batch(run)
    ids = list(source.ids)
    # Under torchrun rank r of W predicts samples r, r + W, ... (by position, so every rank
    # agrees on the split whatever the store held when it started); no process group needed.
    dist = dist_info()
    todo = [i for i, sample_id in enumerate(ids)
            if i % dist.world_size == dist.rank and not store.has(sample_id)]
    with torch.inference_mode(), progress_bar(disable=not progress) as bar:
        task = bar.add_task(f"predict ({len(views)} view{'s' * (len(views) > 1)})", total=len(todo))
        for start in range(0, len(todo), batch):
            part = todo[start : start + batch]
            part_ids = [ids[i] for i in part]
            gathers = np.stack([source[i].gathers for i in part]).astype(np.float32, copy=False)
            velocity = predict_batch(run, gathers, part_ids, views)
            for sample_id, v in zip(part_ids, velocity, strict=True):
                try:
                    store.write(sample_id, v)
                except OSError as exc:
                    from seisinv.io import disk_full_error

                    done = sum(store.has(i) for i in ids)
                    raise disk_full_error(exc, store.root, done, len(ids)) from None
            bar.advance(task, len(part))
    return len(todo)


def prediction_provenance(run, data, tta: Sequence[str]) -> dict:
    """What a prediction directory records (``seisinv.outdir``): the input data's identity,
    the checkpoint's checksums, the weights and the test-time augmentation.

    Args:
        run: a ``LoadedRun`` (``checkpoint``, ``which``, ``survey``).
        data: the dataset path(s) predicted.
        tta: augmentation names.
    """
    from seisinv.outdir import checkpoint_identity, dataset_identity

    checkpoint = getattr(run, "checkpoint", None)
    return {
        "data": dataset_identity(data),
        "checkpoint": checkpoint_identity(checkpoint) if checkpoint else None,
        "weights": getattr(run, "which", ""),
        "tta": list(tta),
        "survey": run.survey.to_dict(),
    }


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


def run_predict(run, data, out, *, tta: Sequence[str] = (), batch: int | None = None,
                overwrite: bool = False, progress: bool = True, source=None) -> tuple[int, int]:
    """``seisinv predict`` as a library call: predict every sample of ``data`` into the
    prediction directory ``out`` under its lock and provenance record (``seisinv.outdir``).

    Args:
        run: a ``LoadedRun`` (``seisinv.training.load_run``).
        data: dataset root(s) (anything ``seisinv.data.open_dataset`` reads).
        out: the prediction directory (created; resumed when made from the same data,
            checkpoint checksums, weights and TTA).
        overwrite: ``out`` holds predictions made otherwise: delete them and start again.
        source: the opened ``data`` (default: opened here with the run's survey).

    Returns:
        ``(predicted now, samples in data)``.

    Raises:
        OutputError: ``out`` overlaps ``data`` or the checkpoint, is a foreign non-empty folder,
            is locked by another process, or holds predictions of other data/checkpoint/settings.
    """
    from seisinv.data import open_dataset
    from seisinv.outdir import check_out_not_inside_inputs, claim_output

    inputs = [data] if isinstance(data, (str, Path)) else list(data)
    checkpoint = getattr(run, "checkpoint", None)
    check_out_not_inside_inputs(out, [*inputs, checkpoint])
    source = open_dataset(data, run.survey) if source is None else source
    provenance = prediction_provenance(run, data, tta)
    with claim_output(out, "seisinv predict", provenance, inputs=[*inputs, checkpoint],
                      overwrite=overwrite, writes=PREDICTION_WRITES):
        store = open_prediction_store(out, run, tta)
        return predict(run, source, store, tta=tta, batch=batch, progress=progress), len(source)

