"""Pieces every architecture shares at its output: bounding to the survey's velocity range and
fitting a decoder's map onto the survey grid."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from seisinv.errors import DataError

OutputActivation = Literal["sigmoid", "tanh", "clamp", "softplus"]
OUTPUT_ACTIVATIONS: tuple[str, ...] = ("sigmoid", "tanh", "clamp", "softplus")
# softplus(x + SOFTPLUS_SHIFT) = 0.5 at x = 0, so zero logits give the range midpoint.
SOFTPLUS_SHIFT = -0.43275212956718856  # log(exp(0.5) - 1)


def bound_velocity(
    logits: torch.Tensor, vmin: float, vmax: float, activation: OutputActivation = "sigmoid"
) -> torch.Tensor:
    """Map unbounded network outputs to velocities in ``[vmin, vmax]`` (survey units).

    ``sigmoid``: ``vmin + (vmax - vmin) * sigmoid(x)`` (for Speed & Structure's 1.5..4.5 km/s this
    is the winners' ``sigmoid(x) * 3 + 1.5``); ``tanh``: OpenFWI's tanh output rescaled from
    [-1, 1]; ``clamp``: linear ``vmin + (vmax - vmin) * (x + 0.5)`` clipped at the bounds (zero
    gradient outside them); ``softplus``: seed 004's "SoftPlus + offset", the offset ``vmin``
    plus ``(vmax - vmin) * softplus(x - 0.433)`` (zero logits give the midpoint), capped at
    ``vmax`` (zero gradient above it).

    Args:
        logits: any shape, float.
    Returns:
        Same shape, survey units.
    """
    span = vmax - vmin
    if activation == "sigmoid":
        unit = torch.sigmoid(logits)
    elif activation == "tanh":
        unit = 0.5 * (torch.tanh(logits) + 1.0)
    elif activation == "clamp":
        unit = torch.clamp(logits + 0.5, 0.0, 1.0)
    elif activation == "softplus":
        unit = torch.clamp(F.softplus(logits + SOFTPLUS_SHIFT), max=1.0)
    else:
        raise ValueError(f"output_activation {activation!r}; use one of {OUTPUT_ACTIVATIONS}")
    return vmin + span * unit


def check_activation(activation: str) -> None:
    """Raise ValueError for an unknown output activation (builders call this at the door)."""
    if activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"output_activation {activation!r}; use one of {OUTPUT_ACTIVATIONS}")


def fit_to_grid(maps: torch.Tensor, nz: int, nx: int) -> torch.Tensor:
    """Fit ``(batch, channels, h, w)`` maps onto the ``(nz, nx)`` grid, depth first.

    A map at least as large as the grid is centre-cropped (OpenFWI InversionNet crops 80 -> 70);
    a smaller one (or one larger on one axis only) is then bilinearly resized.
    """
    h, w = maps.shape[-2:]
    if h >= nz:
        top = (h - nz) // 2
        maps = maps[..., top : top + nz, :]
    if w >= nx:
        left = (w - nx) // 2
        maps = maps[..., left : left + nx]
    if maps.shape[-2:] != (nz, nx):
        maps = F.interpolate(maps, size=(nz, nx), mode="bilinear", align_corners=False)
    return maps


class VelocityOutput(nn.Module):
    """``(batch, 1, h, w)`` logits -> ``(batch, nz, nx)`` velocity in ``[vmin, vmax]``."""

    def __init__(self, nz: int, nx: int, vmin: float, vmax: float, activation: str) -> None:
        super().__init__()
        check_activation(activation)
        self.nz, self.nx, self.vmin, self.vmax, self.activation = nz, nx, vmin, vmax, activation

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        # float32 even under bf16/fp16 autocast: half precision would quantise km/s velocities
        # to about 0.01 and bias the MAE/MAPE.
        logits = fit_to_grid(logits.float(), self.nz, self.nx)
        return bound_velocity(logits[:, 0], self.vmin, self.vmax, self.activation)

    def extra_repr(self) -> str:
        return f"grid=({self.nz}, {self.nx}), range=[{self.vmin}, {self.vmax}], {self.activation}"


def check_gathers(gathers: torch.Tensor, n_shots: int, model: str) -> None:
    """Raise DataError unless ``gathers`` is ``(batch, n_shots, time, receivers)``."""
    if gathers.ndim != 4 or gathers.shape[1] != n_shots:
        raise DataError(
            f"{model} expects gathers (batch, {n_shots} shots, time, receivers); "
            f"got shape {tuple(gathers.shape)}"
        )
