"""Gradient conditioning and model regularisation for FWI, as pure tensor functions.

Models and gradients are ``(batch, nz, nx)`` with axis 1 depth.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel(sigma: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian ``(2 * ceil(3 sigma) + 1,)`` with standard deviation in cells."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).to(dtype)


def gaussian_smooth(field: torch.Tensor, sigma: float | tuple[float, float]) -> torch.Tensor:
    """Separable Gaussian smoothing of ``(batch, nz, nx)`` maps with replicated edges.

    Args:
        field: ``(batch, nz, nx)`` tensor.
        sigma: standard deviation in cells, one value or ``(depth, horizontal)``; 0 skips an axis.

    Returns:
        Smoothed ``(batch, nz, nx)`` tensor (the operator is symmetric, so it can precondition a
        gradient).
    """
    sigma_z, sigma_x = (sigma, sigma) if isinstance(sigma, int | float) else sigma
    out = field.unsqueeze(1)
    for axis, s in ((2, sigma_z), (3, sigma_x)):
        if s <= 0:
            continue
        kernel = gaussian_kernel(s, field.dtype).to(field.device)
        radius = kernel.numel() // 2
        if axis == 2:
            weight, pad = kernel.reshape(1, 1, -1, 1), (0, 0, radius, radius)
        else:
            weight, pad = kernel.reshape(1, 1, 1, -1), (radius, radius, 0, 0)
        out = F.conv2d(F.pad(out, pad, mode="replicate"), weight)
    return out.squeeze(1)


def depth_weights(nz: int, power: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(nz, 1)`` gradient weights ``((z + 1) / nz) ** power``, z the depth index.

    Compensates the geometric spreading that makes the raw FWI gradient much larger near the
    surface than at depth (``power = 0`` disables it).
    """
    z = torch.arange(1, nz + 1, dtype=torch.float64) / nz
    return (z**power).to(dtype).reshape(nz, 1)


def precondition_gradient(grad: torch.Tensor, sigma: float, depth_power: float,
                          mask_rows: int) -> torch.Tensor:
    """Smooth, depth-scale and mask a ``(batch, nz, nx)`` model gradient.

    Args:
        grad: raw gradient on the model grid.
        sigma: Gaussian smoothing in cells (0: none); suppresses the source/receiver footprint.
        depth_power: exponent of the depth scaling (0: none).
        mask_rows: number of top rows (source and receiver depth) whose gradient is zeroed; the
            wavefield singularity there would otherwise dominate the update.
    """
    if sigma > 0:
        grad = gaussian_smooth(grad, sigma)
    if depth_power:
        grad = grad * depth_weights(grad.shape[-2], depth_power, grad.dtype).to(grad.device)
    if mask_rows > 0:
        grad = grad.clone()
        grad[..., :mask_rows, :] = 0
    return grad


def total_variation(model: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Isotropic total variation per sample, ``(batch, nz, nx)`` -> ``(batch,)`` (mean over cells).

    ``model`` should be dimensionless (e.g. velocity divided by the survey's range) so one weight
    works for every survey.
    """
    dz = model[:, 1:, :-1] - model[:, :-1, :-1]
    dx = model[:, :-1, 1:] - model[:, :-1, :-1]
    return (dz.pow(2) + dx.pow(2) + eps).sqrt().flatten(1).mean(1)


def tikhonov(model: torch.Tensor) -> torch.Tensor:
    """First-derivative Tikhonov (smoothness) penalty per sample: mean squared gradient.

    ``(batch, nz, nx)`` dimensionless model -> ``(batch,)``.
    """
    dz = model[:, 1:, :] - model[:, :-1, :]
    dx = model[:, :, 1:] - model[:, :, :-1]
    return dz.pow(2).flatten(1).mean(1) + dx.pow(2).flatten(1).mean(1)


def prior_penalty(model: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Mean squared distance to a prior model per sample, ``(batch, nz, nx)`` x2 -> ``(batch,)``.

    Both should be dimensionless (velocity divided by the survey's range).
    """
    return (model - prior).pow(2).flatten(1).mean(1)


REGULARIZERS = {"tv": total_variation, "tikhonov": tikhonov}
