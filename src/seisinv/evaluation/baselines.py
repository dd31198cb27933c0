"""Baselines that ignore the seismic data: what a model must beat to have learnt anything.

- ``mean-map``: the pixel-wise mean of the training velocity maps.
- ``depth-profile``: a 1-D velocity-versus-depth law, laterally constant: the mean over training
  maps and horizontal positions of v(z), or (``degree`` given) a least-squares polynomial in depth.

Each baseline is a single (nz, nx) map; ``write_baseline`` stores it for every test id as a
``PredictionStore`` so ``evaluate``, ``report`` and ``submit`` treat it like any prediction.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from seisinv.errors import DataError
from seisinv.inference.store import PredictionStore
from seisinv.survey import Survey

BASELINES = ("mean-map", "depth-profile")


def _stack(velocities: Iterable[np.ndarray]) -> np.ndarray:
    stack = np.stack([np.asarray(v, dtype=np.float64) for v in velocities])
    if stack.ndim != 3 or stack.shape[0] == 0:
        raise DataError(f"baselines need training velocities (n, nz, nx), got shape {stack.shape}")
    return stack


def mean_map(velocities: Iterable[np.ndarray]) -> np.ndarray:
    """Pixel-wise mean of training maps: (n, nz, nx) -> (nz, nx) float32, survey units."""
    return _stack(velocities).mean(axis=0).astype(np.float32)


def depth_profile(
    velocities: Iterable[np.ndarray], survey: Survey, degree: int | None = None
) -> np.ndarray:
    """Laterally constant v(z) fitted to training maps, (nz, nx) float32 in survey units.

    Args:
        velocities: (n, nz, nx) training maps, depth first.
        survey: gives the depth of row ``i`` as ``i * dz`` metres and the clip range.
        degree: None for the mean of v at each depth; an integer for a least-squares polynomial
            of that degree in depth (1 = the classic linear v(z) = v0 + k z).
    """
    stack = _stack(velocities)
    profile = stack.mean(axis=(0, 2))  # (nz,): mean over samples and horizontal positions
    if degree is not None:
        depth_m = np.arange(stack.shape[1]) * survey.dz
        # Fitting every pixel (not the mean profile) weights each depth by its sample count alike.
        coeffs = np.polyfit(
            np.repeat(depth_m[None, :], stack.shape[0] * stack.shape[2], axis=0).ravel(),
            stack.transpose(0, 2, 1).reshape(-1),
            degree,
        )
        profile = np.polyval(coeffs, depth_m)
    profile = np.clip(profile, survey.vmin, survey.vmax)
    return np.repeat(profile[:, None], stack.shape[2], axis=1).astype(np.float32)


def fit_baselines(velocities: Iterable[np.ndarray], survey: Survey) -> dict[str, np.ndarray]:
    """Both baselines from training maps: ``{"mean-map": (nz, nx), "depth-profile": (nz, nx)}``."""
    stack = _stack(velocities)
    return {"mean-map": mean_map(stack), "depth-profile": depth_profile(stack, survey)}


def write_baseline(
    out_dir: str | Path, survey: Survey, velocity: np.ndarray, ids: Iterable[str], name: str
) -> PredictionStore:
    """Store one (nz, nx) baseline map as the prediction of every id (a prediction directory)."""
    store = PredictionStore(out_dir, survey, source=f"baseline {name}")
    for sample_id in ids:
        if not store.has(sample_id):
            store.write(sample_id, velocity)
    return store
