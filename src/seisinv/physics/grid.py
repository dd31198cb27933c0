"""The internal simulation grid: coarsening, slowness averaging, padding and point positions.

The survey grid has nodes at ``(i dz, j dx)`` metres. With ``coarsen = c`` the simulation grid
has nodes at ``(i c dz, j c dx)``; each coarse node carries the harmonic mean of the velocity
(mean slowness) over a ``c x c`` window centred on it, which keeps vertical travel times
through thin layers. Sources and receivers keep their positions in metres; points between
nodes are spread / gathered with deepwave's Hicks (windowed-sinc) interpolation, which needs
``HICKS_HALFWIDTH`` nodes of model on each side, so the model is edge-replicated where needed
(also for Speed & Structure's receiver at x = 300 m, one node past the 0..299 m grid).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from seisinv.survey import Survey

HICKS_HALFWIDTH = 4
# Positions closer than this to a node (in cells) are treated as on the node.
ON_NODE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class GridPlan:
    """How one survey is simulated.

    Attributes:
        coarsen: internal grid spacing / survey grid spacing (integer, 1 = survey grid).
        spacing: (dz, dx) of the internal grid in metres.
        pad: model cells added by edge replication (top, bottom, left, right), internal grid.
        source_positions: (shots, 2) float64 (z, x) in internal-grid cells, padding included.
        receiver_positions: (receivers, 2) float64 (z, x) in internal-grid cells.
        off_node: whether any point lies between nodes (deepwave then interpolates).
        time_factor: internal time step / recording dt (integer >= 1).
    """

    coarsen: int
    spacing: tuple[float, float]
    pad: tuple[int, int, int, int]
    source_positions: np.ndarray
    receiver_positions: np.ndarray
    off_node: bool
    time_factor: int


def _pads(positions: np.ndarray, n: int, margin: int) -> tuple[int, int]:
    lo = max(0, math.ceil(margin - positions.min() - ON_NODE_TOLERANCE))
    hi = max(0, math.ceil(positions.max() + margin - (n - 1) - ON_NODE_TOLERANCE))
    return lo, hi


def coarse_shape(survey: Survey, coarsen: int) -> tuple[int, int]:
    """(nz, nx) of the internal grid before padding: nodes covering 0..(n - 1) spacing."""
    return (
        math.ceil((survey.nz - 1) / coarsen) + 1,
        math.ceil((survey.nx - 1) / coarsen) + 1,
    )


def plan_grid(survey: Survey, max_velocity: float) -> GridPlan:
    """Internal grid, padding, point positions and time step for ``survey.simulation``.

    Args:
        survey: geometry and simulation settings.
        max_velocity: largest velocity of the run in m/s (sets the stable time step).
    """
    sim = survey.simulation
    c = sim.coarsen
    dz, dx = survey.dz * c, survey.dx * c
    nz, nx = coarse_shape(survey, c)
    src = np.stack(
        [np.full(survey.n_shots, survey.source_z / dz), np.asarray(survey.source_x) / dx], axis=1
    )
    rec = np.stack(
        [np.full(survey.n_receivers, survey.receiver_z / dz), np.asarray(survey.receiver_x) / dx],
        axis=1,
    )
    points = np.concatenate([src, rec])
    off = np.abs(points - np.rint(points)) > ON_NODE_TOLERANCE
    pad_z = _pads(points[:, 0], nz, HICKS_HALFWIDTH if off[:, 0].any() else 0)
    pad_x = _pads(points[:, 1], nx, HICKS_HALFWIDTH if off[:, 1].any() else 0)
    if sim.free_surface:
        pad_z = (0, pad_z[1])  # the free surface stays at z = 0
    shift = np.array([pad_z[0], pad_x[0]], dtype=np.float64)
    if sim.internal_dt is not None:
        factor = max(1, round(sim.internal_dt / survey.dt))
    else:
        # Largest multiple of dt (at most the coarsening factor) within the Courant limit.
        limit = sim.courant_number / (max_velocity * math.sqrt(1 / dz**2 + 1 / dx**2))
        factor = max(1, min(c, int(limit / survey.dt + 1e-9)))
    return GridPlan(
        coarsen=c,
        spacing=(dz, dx),
        pad=(*pad_z, *pad_x),
        source_positions=src + shift,
        receiver_positions=rec + shift,
        off_node=bool(off.any()),
        time_factor=factor,
    )


def _average_kernel(c: int) -> torch.Tensor:
    """1-D weights averaging ``c`` survey cells centred on a node: (2 (c // 2) + 1,)."""
    if c % 2:
        return torch.full((c,), 1.0 / c)
    k = torch.ones(c + 1)
    k[0] = k[-1] = 0.5
    return k / c


def internal_velocity(v: torch.Tensor, survey: Survey, plan: GridPlan) -> torch.Tensor:
    """Survey-grid velocity (n, nz, nx) m/s -> padded internal-grid velocity, differentiable.

    Coarse nodes take the harmonic mean over a centred ``c x c`` window (slowness average);
    padding replicates the edges, as deepwave's absorbing layer does.
    """
    c = plan.coarsen
    x = v.unsqueeze(1)
    if c > 1:
        nz, nx = coarse_shape(survey, c)
        h = c // 2
        # Replicate so every window centred on a coarse node lies inside the padded array.
        need_z = (nz - 1) * c + h + 1 - survey.nz
        need_x = (nx - 1) * c + h + 1 - survey.nx
        slowness = F.pad(1.0 / x, (h, max(0, need_x), h, max(0, need_z)), mode="replicate")
        k = _average_kernel(c).to(v)
        kz, kx = k.view(1, 1, -1, 1), k.view(1, 1, 1, -1)
        slowness = F.conv2d(F.conv2d(slowness, kz, stride=(c, 1)), kx, stride=(1, c))
        x = 1.0 / slowness[..., :nz, :nx]
    top, bottom, left, right = plan.pad
    if any(plan.pad):
        x = F.pad(x, (left, right, top, bottom), mode="replicate")
    return x.squeeze(1)


# A Ricker wavelet's spectrum is below 1e-3 of its peak above ~3x its peak frequency.
GRADIENT_BAND_FACTOR = 3.0


def gradient_interval_for(survey: Survey, step_dt: float,
                          wavelet: torch.Tensor | None = None) -> int:
    """Propagator steps between gradient contributions for ``survey`` at time step ``step_dt`` (s).

    ``survey.simulation.gradient_interval`` when set; otherwise (None) the largest interval whose
    sampling rate exceeds twice the wavefields' highest frequency: that of ``wavelet`` (a custom
    ``(..., nt)`` source at the survey's ``dt``, ``wavelet_highest_frequency``) or
    ``GRADIENT_BAND_FACTOR`` x the survey's Ricker peak frequency. That rate is what deepwave
    documents as sufficient for the correlation integral of two band-limited fields.
    """
    fixed = survey.simulation.gradient_interval
    if fixed is not None:
        return fixed
    if wavelet is None:
        highest = GRADIENT_BAND_FACTOR * survey.frequency
    else:
        highest = wavelet_highest_frequency(wavelet, survey.dt)
    return max(1, int(1.0 / (2.0 * highest * step_dt)))


def wavelet_highest_frequency(wavelet: torch.Tensor, dt: float, floor: float = 1e-3) -> float:
    """Highest frequency (Hz) where any of ``wavelet``'s ``(..., nt)`` amplitude spectra exceeds
    ``floor`` x its peak (3.2x the peak frequency for a Ricker)."""
    with torch.no_grad():
        spectrum = torch.fft.rfft(wavelet.detach().double(), dim=-1).abs()
        spectrum = spectrum.reshape(-1, spectrum.shape[-1])
        strong = spectrum > floor * spectrum.amax(dim=-1, keepdim=True).clamp_min(1e-300)
        index = int(torch.nonzero(strong.any(dim=0)).max()) if strong.any() else 0
    return max(1, index) / (wavelet.shape[-1] * dt)
