"""Starting models for FWI: a linear v(z) ramp, a heavily smoothed model, or a network's answer.

Every function returns ``(nz, nx)`` float32 velocity in the survey's units, depth first, inside
``[survey.vmin, survey.vmax]``.
"""

from __future__ import annotations

import numpy as np
import torch

from seisinv.errors import DataError
from seisinv.fwi.precondition import gaussian_smooth
from seisinv.survey import Survey

# The ramp spans this fraction of the survey's range, from vmin at the surface: a typical
# sediment profile (1.5 -> 3.3 km/s for OpenFWI) rather than one that reaches the faster rocks.
RAMP_FRACTION = 0.6


def gradient_model(survey: Survey, top: float | None = None,
                   bottom: float | None = None) -> np.ndarray:
    """A velocity increasing linearly with depth, constant along x.

    Args:
        survey: gives the grid and the range.
        top, bottom: velocity at the first and last depth row in survey units (defaults: vmin
            and vmin + 0.6 (vmax - vmin)).

    Returns:
        ``(nz, nx)`` float32, survey units.
    """
    top = survey.vmin if top is None else top
    bottom = survey.vmin + RAMP_FRACTION * (survey.vmax - survey.vmin) if bottom is None else bottom
    column = np.linspace(top, bottom, survey.nz, dtype=np.float64)
    model = np.repeat(column[:, None], survey.nx, axis=1)
    return np.clip(model, survey.vmin, survey.vmax).astype(np.float32)


def smooth_model(survey: Survey, start: np.ndarray | None = None,
                 sigma_m: float | None = None) -> np.ndarray:
    """Heavy Gaussian smoothing of ``start`` (default: the linear ramp), the classical FWI start.

    Args:
        survey: gives the grid and spacing.
        start: ``(nz, nx)`` model in survey units; None uses ``gradient_model(survey)``.
        sigma_m: smoothing standard deviation in metres (default: one dominant wavelength at the
            survey's mean velocity, ``(vmin + vmax) / 2 / frequency``), so that the start holds
            only the long wavelengths FWI cannot easily create.

    Returns:
        ``(nz, nx)`` float32, survey units.
    """
    start = gradient_model(survey) if start is None else np.asarray(start, dtype=np.float32)
    if start.shape != survey.velocity_shape:
        raise DataError(f"start model: shape {start.shape}, expected {survey.velocity_shape} "
                        f"(nz, nx) for survey {survey.name!r}")
    if sigma_m is None:
        sigma_m = 0.5 * (survey.vmin + survey.vmax) * survey.to_mps / survey.frequency
    sigma = (sigma_m / survey.dz, sigma_m / survey.dx)
    smoothed = gaussian_smooth(torch.from_numpy(start)[None].double(), sigma)[0].numpy()
    return np.clip(smoothed, survey.vmin, survey.vmax).astype(np.float32)


def initial_from_store(store, sample_id: str, survey: Survey,
                       smooth_sigma_m: float = 0.0) -> np.ndarray:
    """A network's prediction (``PredictionStore``) as the start, optionally smoothed.

    Args:
        store: a ``seisinv.inference.store.PredictionStore`` holding ``sample_id``.
        sample_id: the sample.
        survey: must match the store's survey grid.
        smooth_sigma_m: optional Gaussian smoothing in metres (0: the prediction as is).

    Returns:
        ``(nz, nx)`` float32, survey units, clipped to the survey range.

    Raises:
        DataError: the store lacks the sample or holds another grid.
    """
    if not store.has(sample_id):
        raise DataError(f"{store.root}: no prediction for sample {sample_id!r} "
                        f"(velocity/{sample_id}.npy missing)")
    if store.survey.velocity_shape != survey.velocity_shape:
        raise DataError(f"{store.root}: predictions are {store.survey.velocity_shape} (nz, nx), "
                        f"survey {survey.name!r} needs {survey.velocity_shape}")
    prediction = np.asarray(store.read(sample_id), dtype=np.float32)
    if smooth_sigma_m > 0:
        return smooth_model(survey, prediction, smooth_sigma_m)
    return np.clip(prediction, survey.vmin, survey.vmax).astype(np.float32)
