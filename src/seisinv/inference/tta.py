"""Test-time augmentation views, each with a weight: ``tta_views(["flip", "noise:0.5"], survey)``.

A view changes raw gathers ``(b, shots, time, receivers)`` and maps the prediction
``(b, nz, nx)`` back to the original frame; ``predict`` combines the back-mapped predictions as the
weighted mean ``sum(w_v * p_v) / sum(w_v)``.

- ``identity``: the plain prediction; always present (weight 1 unless ``identity:W`` is given,
  ``identity:0`` drops it).
- ``flip``: the physically consistent horizontal flip (``seisinv.data.flip.flip_gathers``: shots
  in mirrored order, receivers reversed); the prediction is flipped back with ``flip_velocity``.
- ``flip_slots``: Speed & Structure seed 001's flip on six source slots
  (``seisinv.data.flip.flip_source_slots``; for runs whose pipeline has ``source_slots``).
- ``flip_receivers``: receivers reversed, shots kept in order (the S&S 1st place's public code).
- ``noise``: ``NOISE_DRAWS`` copies with gaussian noise of ``NOISE_LEVEL`` x each sample's
  gather RMS added (seeded per sample id, so reruns give identical maps).
- ``scale``: the gathers multiplied by each of ``SCALE_FACTORS`` (source-strength uncertainty).

A weight ``name:W`` applies to each view of that augmentation (``noise:0.5`` gives both noise
views weight 0.5), so the unweighted list (every weight 1) is the plain mean of all views, as
before weights existed. Augmentations are not combined with each other.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from seisinv.errors import SeisinvError
from seisinv.survey import Survey

NOISE_LEVEL = 0.05
NOISE_DRAWS = 2
SCALE_FACTORS = (0.9, 1.1)
TTA = ("flip", "noise", "scale", "flip_slots", "flip_receivers")
# Seed 001's zero source slot (see ``seisinv.data.flip.flip_source_slots``).
SOURCE_SLOT_POSITION = 3


@dataclass(frozen=True)
class View:
    """One augmented view: how to change raw gathers, and how to map the prediction back.

    Attributes:
        name: label ("identity", "flip", "noise-0", "scale-0.9").
        forward: ``(gathers (b, shots, time, receivers), ids) -> gathers`` of the same shape.
        inverse: ``velocity (b, nz, nx) -> velocity`` in the original frame.
        weight: the view's weight in the combination (>= 0).
    """

    name: str
    forward: Callable[[np.ndarray, Sequence[str]], np.ndarray]
    inverse: Callable[[np.ndarray], np.ndarray]
    weight: float = 1.0


def _same(array, *_):
    return array


def _noise_view(draw: int, weight: float) -> View:
    def forward(gathers: np.ndarray, ids: Sequence[str]) -> np.ndarray:
        out = np.empty_like(gathers)
        for k, sample_id in enumerate(ids):
            rng = np.random.default_rng([zlib.crc32(sample_id.encode()), draw])
            rms = float(np.sqrt(np.mean(np.square(gathers[k], dtype=np.float64))))
            noise = rng.standard_normal(gathers[k].shape, dtype=np.float32)
            out[k] = gathers[k] + np.float32(NOISE_LEVEL * rms) * noise
        return out

    return View(f"noise-{draw}", forward, _same, weight)


def _scale_view(factor: float, weight: float) -> View:
    return View(f"scale-{factor:g}", lambda g, ids: g * np.float32(factor), _same, weight)


def tta_weights(tta: str | Sequence[str] | Mapping[str, float] | None) -> dict[str, float]:
    """``"flip,noise:0.5"`` / ``["flip", "noise:0.5"]`` / ``{"flip": 1, "noise": 0.5}`` ->
    ``{"flip": 1.0, "noise": 0.5}`` (``none`` and empty entries skipped).

    Raises:
        SeisinvError: an unknown name, a weight that is not a finite number >= 0, or a name twice.
    """
    if tta is None:
        return {}
    if isinstance(tta, Mapping):
        items = [f"{k}:{v}" for k, v in tta.items()]
    else:
        items = tta.split(",") if isinstance(tta, str) else list(tta)
    weights: dict[str, float] = {}
    for item in (i.strip() for i in items):
        if not item or item == "none":
            continue
        name, colon, text = (part.strip() for part in item.partition(":"))
        if name not in (*TTA, "identity"):
            raise SeisinvError(f"unknown test-time augmentation {name!r}; known: {', '.join(TTA)}")
        try:
            weight = float(text) if colon else 1.0
        except ValueError:
            weight = float("nan")
        if not (np.isfinite(weight) and weight >= 0):
            raise SeisinvError(f"test-time augmentation {item!r}: the weight must be a number >= 0")
        if name in weights:
            raise SeisinvError(f"test-time augmentation {name!r} is given twice")
        weights[name] = weight
    return weights


def parse_tta(text: str | Sequence[str] | Mapping[str, float] | None) -> list[str]:
    """Canonical list of augmentation entries: ``"flip"`` (weight 1) or ``"noise:0.5"``.

    ``"flip,noise"`` -> ``["flip", "noise"]``; ``"none"`` / None -> ``[]``. The list is what
    prediction manifests record, so a rerun with other weights is recognised as different.
    """
    return [name if w == 1 else f"{name}:{w:g}" for name, w in tta_weights(text).items()]


def tta_views(tta: str | Sequence[str] | Mapping[str, float], survey: Survey) -> list[View]:
    """The identity view plus the views of each named augmentation, with their weights.

    Raises:
        SeisinvError: an unknown name or bad weight, or all weights zero.
    """
    from seisinv.data.flip import flip_gathers, flip_receivers, flip_source_slots, flip_velocity

    weights = tta_weights(tta)
    views = [View("identity", _same, _same, weights.pop("identity", 1.0))]
    for name, weight in weights.items():
        if name == "flip":
            views.append(View("flip", lambda g, ids: flip_gathers(g, survey), flip_velocity, weight))
        elif name == "flip_slots":
            views.append(View("flip_slots", lambda g, ids: flip_source_slots(
                g, SOURCE_SLOT_POSITION, survey.n_shots), flip_velocity, weight))
        elif name == "flip_receivers":
            views.append(View("flip_receivers", lambda g, ids: flip_receivers(g), flip_velocity,
                              weight))
        elif name == "noise":
            views += [_noise_view(draw, weight) for draw in range(NOISE_DRAWS)]
        else:
            views += [_scale_view(f, weight) for f in SCALE_FACTORS]
    views = [v for v in views if v.weight > 0]
    if not views:
        raise SeisinvError("test-time augmentation: every view has weight 0")
    return views
