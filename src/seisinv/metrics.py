"""Velocity-map metrics as pure functions of arrays: MAE, RMSE, MAPE (Speed & Structure) and SSIM.

Every function takes a prediction and a truth of the same shape, either one map ``(nz, nx)`` or a
batch ``(n, nz, nx)`` (depth is the second-last axis, horizontal the last), in the survey's units
(m/s for OpenFWI, km/s for Speed & Structure). Inputs may be numpy arrays or torch tensors (on any
device): the ``*_per_sample`` functions return a float64 array of the same kind, shape ``(n,)``
(a tensor stays on its device, so validation on a GPU needs no copy); the scalar functions return
Python floats. Arithmetic is done in float64 so results do not depend on the input precision.

Batch reductions: every metric is computed per sample first and then averaged over samples (for
equal-sized maps the MAE average equals the pixel-wise mean). ``rmse`` of a batch is the root of
the mean squared error over all pixels, not the mean of per-sample RMSEs.

This module is the one implementation of these metrics in seisinv: training's validation, the
losses, ensembles and ``seisinv evaluate`` all use it, so their numbers agree. It sits at the
foundation layer because training (before evaluation in the data flow) needs it.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from seisinv.errors import DataError

# Speed & Structure's scorer adds this to |truth| in the denominator of its MAPE.
MAPE_EPSILON = 1e-8
# Standard SSIM constants (Wang et al. 2004) for a dynamic range of 1.
SSIM_K1, SSIM_K2 = 0.01, 0.03
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5

METRIC_NAMES = ("mae", "rmse", "mape", "ssim")
# Direction of each metric: True when larger is better.
HIGHER_IS_BETTER = {"mae": False, "rmse": False, "mape": False, "ssim": True}


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _pair(pred, true):
    """Both inputs as float64 with a leading batch axis, (n, nz, nx): torch tensors when either
    input is one (on its device), else numpy arrays."""
    if _is_torch(pred) or _is_torch(true):
        import torch

        device = pred.device if _is_torch(pred) else true.device
        p = torch.as_tensor(pred, device=device).double()
        t = torch.as_tensor(true, device=device).double()
    else:
        p = np.asarray(pred, dtype=np.float64)
        t = np.asarray(true, dtype=np.float64)
    if tuple(p.shape) != tuple(t.shape):
        raise DataError(f"prediction shape {tuple(p.shape)} does not match truth shape {tuple(t.shape)}")
    if p.ndim not in (2, 3):
        raise DataError(f"expected (nz, nx) or (n, nz, nx) velocity maps, got shape {tuple(p.shape)}")
    return (p[None], t[None]) if p.ndim == 2 else (p, t)


def mae_per_sample(pred, true) -> np.ndarray:
    """Mean absolute error of each map: (n,) float64 in velocity units."""
    p, t = _pair(pred, true)
    return abs(p - t).mean(axis=(1, 2))


def mse_per_sample(pred, true) -> np.ndarray:
    """Mean squared error of each map: (n,) float64 in squared velocity units."""
    p, t = _pair(pred, true)
    return ((p - t) ** 2).mean(axis=(1, 2))


def mape_per_sample(pred, true) -> np.ndarray:
    """Speed & Structure's per-sample MAPE: ``mean(|g - p| / (|g| + 1e-8))`` per map, (n,) float64.

    A fraction (0.05 = 5 %), not a percentage, exactly as the challenge's scorer computes it.
    """
    p, t = _pair(pred, true)
    return (abs(t - p) / (abs(t) + MAPE_EPSILON)).mean(axis=(1, 2))


def mae(pred, true) -> float:
    """Mean absolute error over all pixels (and samples), in velocity units."""
    return float(mae_per_sample(pred, true).mean())


def rmse(pred, true) -> float:
    """Root mean squared error over all pixels (and samples), in velocity units."""
    return math.sqrt(float(mse_per_sample(pred, true).mean()))


def mape(pred, true) -> float:
    """Speed & Structure score: per-sample MAPE (fraction), then the mean over samples."""
    return float(mape_per_sample(pred, true).mean())


@lru_cache(maxsize=8)
def gaussian_window(size: int, sigma: float) -> np.ndarray:
    """Normalised 1-D gaussian weights, (size,) float64 summing to 1."""
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum()


def _filter_valid(images, window: np.ndarray):
    """Separable 'valid' gaussian filtering of (n, nz, nx) along both map axes (numpy or torch)."""
    size = window.size
    if _is_torch(images):
        import torch

        w = torch.as_tensor(window, dtype=images.dtype, device=images.device)
        return images.unfold(1, size, 1).matmul(w).unfold(2, size, 1).matmul(w)
    rows = np.lib.stride_tricks.sliding_window_view(images, size, axis=1) @ window
    return np.lib.stride_tricks.sliding_window_view(rows, size, axis=2) @ window


def ssim_per_sample(
    pred,
    true,
    vmin: float,
    vmax: float,
    window: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
) -> np.ndarray:
    """Structural similarity of each map with a gaussian window, (n,) float64 in [-1, 1].

    Both maps are first normalised to [0, 1] over the survey's velocity range
    ``(v - vmin) / (vmax - vmin)`` (clipped), so the dynamic range is 1. Local means, variances and
    the covariance use an 11-tap gaussian window (sigma 1.5 pixels) applied separably along depth and
    horizontal axes, only where the window fits inside the map (no padding); the SSIM map is
    averaged over those positions. Maps smaller than the window use the largest odd window that fits.

    Args:
        pred, true: (nz, nx) or (n, nz, nx) velocity in survey units.
        vmin, vmax: the survey's velocity range, same units.
    """
    if not vmax > vmin:
        raise DataError(f"SSIM needs vmax > vmin, got vmin={vmin}, vmax={vmax}")
    p, t = _pair(pred, true)
    p = ((p - vmin) / (vmax - vmin)).clip(0.0, 1.0)
    t = ((t - vmin) / (vmax - vmin)).clip(0.0, 1.0)
    fit = min(window, p.shape[1], p.shape[2])
    size = fit if fit % 2 == 1 else fit - 1
    w = gaussian_window(size, sigma)
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    mu_p, mu_t = _filter_valid(p, w), _filter_valid(t, w)
    var_p = _filter_valid(p * p, w) - mu_p**2
    var_t = _filter_valid(t * t, w) - mu_t**2
    cov = _filter_valid(p * t, w) - mu_p * mu_t
    ssim_map = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / (
        (mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)
    )
    return ssim_map.mean(axis=(1, 2))


def ssim(pred, true, vmin: float, vmax: float) -> float:
    """Mean over samples of :func:`ssim_per_sample`."""
    return float(ssim_per_sample(pred, true, vmin, vmax).mean())


def sample_metrics(pred, true, vmin: float, vmax: float) -> dict[str, float]:
    """All metrics of one (nz, nx) map: ``{"mae", "mse", "rmse", "mape", "ssim"}`` as floats."""
    mse_value = float(mse_per_sample(pred, true)[0])
    return {
        "mae": float(mae_per_sample(pred, true)[0]),
        "mse": mse_value,
        "rmse": math.sqrt(mse_value),
        "mape": float(mape_per_sample(pred, true)[0]),
        "ssim": float(ssim_per_sample(pred, true, vmin, vmax)[0]),
    }


def aggregate(records: list[dict[str, float]]) -> dict[str, float]:
    """Combine per-sample metric dicts (from :func:`sample_metrics`) into one summary.

    MAE, MAPE and SSIM are means over samples; RMSE is ``sqrt(mean(mse))`` (all pixels count
    equally). ``n`` is the number of samples.
    """
    if not records:
        return {"n": 0}
    mean = {key: float(np.mean([r[key] for r in records])) for key in ("mae", "mse", "mape", "ssim")}
    return {
        "n": len(records),
        "mae": mean["mae"],
        "rmse": float(np.sqrt(mean["mse"])),
        "mape": mean["mape"],
        "ssim": mean["ssim"],
    }
