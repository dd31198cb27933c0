"""Predict velocity maps for every sample of a dataset, with optional test-time augmentation.

``predict(run, source, store)`` reads raw gathers from a ``SampleSource`` in batches, runs the
trained model (``LoadedRun.predict`` applies the run's fitted pipeline) on every augmented view,
maps each prediction back to the original frame, averages the views and writes (nz, nx) float32
maps in survey units to a ``PredictionStore``. Samples already in the store are skipped, so an
interrupted job resumes where it stopped.

Test-time augmentations (``TTA``):

- ``flip``: the physically consistent horizontal flip (``seisinv.data.flip.flip_gathers``: shots
  in mirrored order, receivers reversed); the prediction is flipped back with ``flip_velocity``.
- ``noise``: ``NOISE_DRAWS`` copies with gaussian noise of ``NOISE_LEVEL`` x each sample's
  gather RMS added (seeded per sample id, so reruns give identical maps).
- ``scale``: the gathers multiplied by each of ``SCALE_FACTORS`` (source-strength uncertainty).
- ``flip_slots``: Speed & Structure seed 001's flip on six source slots
  (``seisinv.data.flip.flip_source_slots``; for runs whose pipeline has ``source_slots``).
- ``flip_receivers``: receivers reversed, shots kept in order (the S&S 1st place's public code).

The identity view is always included; each augmentation adds its views (they are not combined
with each other), and the final map is the mean of all views.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seisinv.errors import SeisinvError
from seisinv.inference.store import PredictionStore
from seisinv.survey import Survey

NOISE_LEVEL = 0.05
NOISE_DRAWS = 2
SCALE_FACTORS = (0.9, 1.1)


@dataclass(frozen=True)
class View:
    """One augmented view: how to change raw gathers, and how to map the prediction back.

    Attributes:
        name: label ("identity", "flip", "noise-0", "scale-0.9").
        forward: ``(gathers (b, shots, time, receivers), ids) -> gathers`` of the same shape.
        inverse: ``velocity (b, nz, nx) -> velocity`` in the original frame.
    """

    name: str
    forward: Callable[[np.ndarray, Sequence[str]], np.ndarray]
    inverse: Callable[[np.ndarray], np.ndarray]


def _same(array, *_):
    return array


def _noise_view(draw: int) -> View:
    def forward(gathers: np.ndarray, ids: Sequence[str]) -> np.ndarray:
        out = np.empty_like(gathers)
        for k, sample_id in enumerate(ids):
            rng = np.random.default_rng([zlib.crc32(sample_id.encode()), draw])
            rms = float(np.sqrt(np.mean(np.square(gathers[k], dtype=np.float64))))
            noise = rng.standard_normal(gathers[k].shape, dtype=np.float32)
            out[k] = gathers[k] + np.float32(NOISE_LEVEL * rms) * noise
        return out

    return View(f"noise-{draw}", forward, _same)


def _scale_view(factor: float) -> View:
    return View(f"scale-{factor:g}", lambda g, ids: g * np.float32(factor), _same)


TTA = ("flip", "noise", "scale", "flip_slots", "flip_receivers")
# Seed 001's zero source slot (see ``seisinv.data.flip.flip_source_slots``).
SOURCE_SLOT_POSITION = 3


def tta_views(tta: Sequence[str], survey: Survey) -> list[View]:
    """The identity view plus the views of each named augmentation (see the module docstring).

    Raises:
        SeisinvError: an unknown augmentation name.
    """
    from seisinv.data.flip import flip_gathers, flip_receivers, flip_source_slots, flip_velocity

    views = [View("identity", _same, _same)]
    for name in tta:
        if name == "flip":
            views.append(View("flip", lambda g, ids: flip_gathers(g, survey), flip_velocity))
        elif name == "flip_slots":
            views.append(View("flip_slots", lambda g, ids: flip_source_slots(
                g, SOURCE_SLOT_POSITION, survey.n_shots), flip_velocity))
        elif name == "flip_receivers":
            views.append(View("flip_receivers", lambda g, ids: flip_receivers(g), flip_velocity))
        elif name == "noise":
            views += [_noise_view(draw) for draw in range(NOISE_DRAWS)]
        elif name == "scale":
            views += [_scale_view(f) for f in SCALE_FACTORS]
        elif name != "none":
            raise SeisinvError(f"unknown test-time augmentation {name!r}; known: {', '.join(TTA)}")
    return views


def parse_tta(text: str | Sequence[str] | None) -> list[str]:
    """``"flip,noise"`` / ``["flip"]`` / ``"none"`` / None -> a list of augmentation names."""
    if text is None:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [i.strip() for i in items if i.strip() and i.strip() != "none"]
    unknown = [n for n in names if n not in TTA]
    if unknown:
        raise SeisinvError(f"unknown test-time augmentation {unknown[0]!r}; known: {', '.join(TTA)}")
    return names


def predict_batch(run, gathers: np.ndarray, ids: Sequence[str], views: Sequence[View]) -> np.ndarray:
    """Mean over views of the back-mapped predictions of one batch.

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
        back = view.inverse(predicted)
        total = back if total is None else total + back
    return (total / len(views)).astype(np.float32)


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
        tta: augmentation names (``TTA``); () for the plain prediction.
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
