"""Building blocks shared by the velocity families: smooth curves, smooth fields, layer stacks.

Everything here works in *normalised* units so a family looks alike on any grid: depth and
horizontal position run over ``[0, 1]`` across the grid, and a "unit velocity" ``u`` in ``[0, 1]``
maps to ``vmin + u * (vmax - vmin)`` in the survey's units (see ``to_velocity``). Maps are
``(nz, nx)``: axis 0 is depth (down), axis 1 is horizontal.
"""

from __future__ import annotations

import numpy as np
from scipy import fft
from scipy.ndimage import gaussian_filter


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

    The noise is drawn directly as Fourier coefficients and filtered there (periodic, like
    ``gaussian_filter(mode="wrap")`` of white noise), so one inverse FFT does it and the cost does
    not grow with the correlation length (``benchmarks/maps.py``).
    """
    side = max(shape)
    sigma = (max(corr_z * side, 0.5), max(corr_x * side, 0.5))
    return _normalised_field(rng, shape, gaussian_gain(fast_shape(shape), sigma))


def fast_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The smallest shape >= ``shape`` whose sides FFT fast (1259, a prime, becomes 1260)."""
    return tuple(fft.next_fast_len(int(n), real=True) for n in shape)


def gaussian_gain(shape: tuple[int, int], sigma: tuple[float, float]) -> np.ndarray:
    """Fourier transform of a unit-sum Gaussian of std ``sigma`` (cells) in rfft2 layout,
    (nz, nx // 2 + 1) float32: ``exp(-2 pi^2 sigma^2 k^2)``, separable in z and x."""
    kz = np.fft.fftfreq(shape[0])
    kx = np.fft.rfftfreq(shape[1])
    gz = np.exp(-2.0 * np.pi**2 * (sigma[0] * kz) ** 2).astype(np.float32)
    gx = np.exp(-2.0 * np.pi**2 * (sigma[1] * kx) ** 2).astype(np.float32)
    return np.outer(gz, gx)


def gaussian_blur(image: np.ndarray, sigma: tuple[float, float]) -> np.ndarray:
    """``image`` (nz, nx) smoothed by a Gaussian of std ``sigma`` (cells), edges extended by
    reflection; (nz, nx) float64.

    Narrow kernels (sigma <= 4 cells) use ``scipy.ndimage.gaussian_filter(mode="reflect")``,
    which is faster there; wider ones use an FFT on a padded, FFT-friendly grid, whose cost does
    not grow with sigma (the spatial filter's does: ~0.2 s for sigma 25 on 1259 x 300).
    """
    if max(sigma) <= 4.0:
        return gaussian_filter(image.astype(np.float64), sigma=sigma, mode="reflect")
    pad = (int(np.ceil(3 * sigma[0])), int(np.ceil(3 * sigma[1])))
    nz, nx = fast_shape((image.shape[0] + 2 * pad[0], image.shape[1] + 2 * pad[1]))
    padded = np.pad(image.astype(np.float32),
                    ((pad[0], nz - image.shape[0] - pad[0]), (pad[1], nx - image.shape[1] - pad[1])),
                    mode="symmetric")
    blurred = fft.irfft2(fft.rfft2(padded) * gaussian_gain(padded.shape, sigma), s=padded.shape)
    return blurred[pad[0]:pad[0] + image.shape[0], pad[1]:pad[1] + image.shape[1]].astype(
        np.float64
    )


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
    work = fast_shape(shape)
    kz = np.fft.fftfreq(work[0])[:, None] * work[0] / side * elongation
    kx = np.fft.rfftfreq(work[1])[None, :] * work[1] / side
    k = np.sqrt(kz**2 + kx**2)
    gain = np.maximum(k, 1.0 / side) ** (-exponent / 2.0)
    gain[0, 0] = 0.0  # no mean component
    return _normalised_field(rng, shape, gain.astype(np.float32))


def _normalised_field(rng: np.random.Generator, shape: tuple[int, int], gain: np.ndarray) -> np.ndarray:
    """Gaussian noise drawn as rfft2 coefficients, filtered by ``gain`` (rfft2 layout of the
    ``fast_shape(shape)`` grid), back to space with one inverse FFT, cropped to ``shape`` and
    rescaled to zero mean and unit std; (nz, nx) float64.

    Only the rows and columns where ``gain`` is not negligible (> 1e-6 of its peak) get noise:
    a smooth field's spectrum is a small corner of the grid's.
    """
    work = fast_shape(shape)
    live = gain > 1e-6 * gain.max()
    rows = np.flatnonzero(live.any(axis=1))
    cols = int(np.flatnonzero(live.any(axis=0)).max()) + 1
    noise = rng.standard_normal((2, len(rows), cols), dtype=np.float32)
    coefficients = np.zeros(gain.shape, np.complex64)
    coefficients[rows, :cols] = (noise[0] + 1j * noise[1]) * gain[rows, :cols]
    field = fft.irfft2(coefficients, s=work)[: shape[0], : shape[1]].astype(np.float64)
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
