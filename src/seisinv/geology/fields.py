"""Building blocks shared by the velocity families: smooth curves, smooth fields, layer stacks.

Everything here works in *normalised* units so a family looks alike on any grid: depth and
horizontal position run over ``[0, 1]`` across the grid, and a "unit velocity" ``u`` in ``[0, 1]``
maps to ``vmin + u * (vmax - vmin)`` in the survey's units (see ``to_velocity``). Maps are
``(nz, nx)``: axis 0 is depth (down), axis 1 is horizontal.
"""

from __future__ import annotations

import numpy as np


def depth_grid(nz: int) -> np.ndarray:
    """Cell-centre depths as fractions of the grid depth, (nz, 1) float64 in (0, 1)."""
    return ((np.arange(nz) + 0.5) / nz)[:, None]


def smooth_curve(rng: np.random.Generator, nx: int, amplitude: float, modes: int = 4) -> np.ndarray:
    """A smooth random curve over the horizontal axis, (nx,) float64 with peak value ~amplitude.

    A sum of ``modes`` sinusoids with random phases whose weights fall as 1/k, so low wavelengths
    dominate, like gentle folds.
    """
    x = np.linspace(0.0, 1.0, nx)
    curve = np.zeros(nx)
    for k in range(1, modes + 1):
        curve += rng.normal() / k * np.sin(np.pi * k * x + rng.uniform(0, 2 * np.pi))
    peak = np.abs(curve).max()
    return curve * (amplitude / peak if peak > 0 else 0.0)


def smooth_field(
    rng: np.random.Generator, shape: tuple[int, int], corr_z: float, corr_x: float
) -> np.ndarray:
    """Gaussian-filtered white noise, (nz, nx) float64 with zero mean and unit std.

    ``corr_z`` and ``corr_x`` are correlation lengths as fractions of the grid's *larger* side
    (cells, assuming dx == dz), so the texture keeps its proportions on tall grids such as
    Speed & Structure's 1259 x 300; ``corr_x`` longer than ``corr_z`` gives layer-like streaks.

    The filter is applied in the Fourier domain (periodic, like ``gaussian_filter(mode="wrap")``),
    so the cost does not grow with the correlation length: ~10 ms for 1259 x 300 where the
    spatial filter of seisinv 0.1.0 took ~1 s (``benchmarks/maps.py``).
    """
    side = max(shape)
    sigma = (max(corr_z * side, 0.5), max(corr_x * side, 0.5))
    kz = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    # Fourier transform of a unit-sum Gaussian of std sigma (cells): exp(-2 pi^2 sigma^2 k^2).
    gain = np.exp(-2.0 * np.pi**2 * ((sigma[0] * kz) ** 2 + (sigma[1] * kx) ** 2))
    return _normalised_field(rng, shape, gain)


def fft_field(
    rng: np.random.Generator, shape: tuple[int, int], exponent: float, elongation: float = 1.0
) -> np.ndarray:
    """An image-like random field with power spectrum ~ 1 / |k|^exponent, (nz, nx) float64,
    zero mean and unit std.

    Natural images have exponents near 2; larger ones give smoother fields. ``elongation`` > 1
    stretches structures horizontally (vertical wavenumbers count ``elongation`` times more),
    like layer-parallel texture. Wavenumbers are per cell of the *larger* side so the texture
    keeps its proportions on tall grids.
    """
    side = max(shape)
    kz = np.fft.fftfreq(shape[0])[:, None] * shape[0] / side * elongation
    kx = np.fft.rfftfreq(shape[1])[None, :] * shape[1] / side
    k = np.sqrt(kz**2 + kx**2)
    k[0, 0] = np.inf  # no mean component
    gain = np.maximum(k, 1.0 / side) ** (-exponent / 2.0)
    gain[0, 0] = 0.0
    return _normalised_field(rng, shape, gain)


def _normalised_field(rng: np.random.Generator, shape: tuple[int, int], gain: np.ndarray) -> np.ndarray:
    """White noise filtered by ``gain`` (rfft2 layout), rescaled to zero mean and unit std."""
    noise = rng.standard_normal(shape)
    field = np.fft.irfft2(np.fft.rfft2(noise) * gain, s=shape)
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field


def layer_tops(rng: np.random.Generator, n_layers: int) -> np.ndarray:
    """Depths of the ``n_layers - 1`` interfaces as sorted fractions in (0, 1), (n_layers-1,).

    Thicknesses come from a Dirichlet draw so no layer is vanishingly thin too often.
    """
    thickness = rng.dirichlet(np.full(n_layers, 2.0))
    return np.cumsum(thickness)[:-1]


def layer_unit_velocities(rng: np.random.Generator, n_layers: int) -> np.ndarray:
    """Unit velocities of ``n_layers`` layers from top to bottom, (n_layers,) in [0, 1].

    The top layer starts in [0, 0.4] and the stack spans at least 0.3 of the range, with every
    step down at least 30 % of an average step, so no map is a near-constant (a few m/s of
    contrast teaches a network nothing). Ascending (velocity grows with depth) except that, one
    time in four, two neighbouring layers swap to make a low-velocity layer, as OpenFWI's "B"
    variants contain.
    """
    start = rng.uniform(0.0, 0.4)
    span = rng.uniform(0.3, 1.0 - start)
    steps = rng.uniform(0.3, 1.0, n_layers - 1)
    values = start + span * np.concatenate([[0.0], np.cumsum(steps) / steps.sum()])
    if n_layers > 2 and rng.random() < 0.25:
        i = rng.integers(0, n_layers - 1)
        values[[i, i + 1]] = values[[i + 1, i]]
    return values


def label_layers(interfaces: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Layer index of every cell, (nz, nx) int64.

    Args:
        interfaces: (layers - 1, nx) interface depths as fractions, sorted along axis 0.
        depth: (nz, nx) or (nz, 1) depth of each cell as a fraction (may be shifted by faults).
    """
    return (depth[None, :, :] > interfaces[:, None, :]).sum(axis=0)


def to_velocity(unit: np.ndarray, vrange: tuple[float, float]) -> np.ndarray:
    """Unit velocities in [0, 1] -> (same shape) float32 velocities in ``[vmin, vmax]``."""
    lo, hi = vrange
    return (lo + np.clip(unit, 0.0, 1.0) * (hi - lo)).astype(np.float32)
