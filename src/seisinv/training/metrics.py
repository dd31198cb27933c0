"""Validation metrics as pure functions of velocity tensors.

All take ``pred`` and ``target`` of shape ``(batch, nz, nx)`` (depth first) in the survey's units
and return one value per sample, shape ``(batch,)``, so callers can average overall, per family,
or across processes by summing values and counts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(
            f"pred {tuple(pred.shape)} and target {tuple(target.shape)} "
            "must both be (batch, nz, nx)"
        )


def mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per sample, (batch,), in survey units (m/s or km/s)."""
    _check(pred, target)
    return (pred - target).abs().mean(dim=(1, 2))


def mape(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute percentage error per sample, (batch,), as a fraction (0.05 = 5 %).

    Exactly as Speed & Structure scores it: ``mean(|g - p| / (|g| + 1e-8))`` over the pixels of
    one sample; the score is then the mean over samples.
    """
    _check(pred, target)
    return ((target - pred).abs() / (target.abs() + 1e-8)).mean(dim=(1, 2))


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device) -> torch.Tensor:
    coords = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float,
    window: int = 11,
    sigma: float = 1.5,
) -> torch.Tensor:
    """Structural similarity per sample, (batch,), in [-1, 1] (1 = identical).

    Gaussian-windowed SSIM (Wang et al. 2004, K1 = 0.01, K2 = 0.03) over valid windows only, as
    OpenFWI reports it on min-max normalised maps; ``data_range`` is the velocity range of the
    survey (``vmax - vmin``) in its units. The window shrinks to the map size on tiny grids.
    """
    _check(pred, target)
    x = pred.double()[:, None]
    y = target.double()[:, None]
    size = min(window, pred.shape[1], pred.shape[2])
    w = _gaussian_window(size, sigma, x.dtype, x.device)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = F.conv2d(x, w), F.conv2d(y, w)
    var_x = F.conv2d(x * x, w) - mu_x**2
    var_y = F.conv2d(y * y, w) - mu_y**2
    cov = F.conv2d(x * y, w) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return ssim_map.mean(dim=(1, 2, 3)).to(pred.dtype)
