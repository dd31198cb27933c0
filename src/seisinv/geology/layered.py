"""Layered families mirroring OpenFWI: ``flat`` (FlatVel), ``curved`` (CurveVel), ``flatfault``
and ``curvefault`` (FlatFault / CurveFault), and the ``fault`` alias picking either fault family.

Maps are (nz, nx), depth first, in the units of ``vrange``.
"""

from __future__ import annotations

import numpy as np

from seisinv.geology.base import FAMILIES
from seisinv.geology.fields import (
    depth_grid,
    label_layers,
    layer_tops,
    layer_unit_velocities,
    smooth_curve,
    to_velocity,
)


def layer_interfaces(
    rng: np.random.Generator, n_layers: int, shape: tuple[int, int], curved: bool
) -> np.ndarray:
    """Interface depths as fractions of the grid depth, (n_layers - 1, nx), sorted along axis 0.

    Curved interfaces share one fold shape (scaled per interface, plus a little individual
    wobble), like a folded sedimentary stack; sorting keeps interfaces from crossing. Fold
    amplitudes are 3-15 % of the depth on a square grid and shrink with the width-to-depth
    ratio on tall grids, so folds keep their slopes instead of becoming steep.
    """
    nz, nx = shape
    tops = layer_tops(rng, n_layers)[:, None] * np.ones((1, nx))
    if curved:
        aspect = min(1.0, nx / nz)
        fold = smooth_curve(rng, nx, amplitude=rng.uniform(0.03, 0.15) * aspect)
        scale = rng.uniform(0.5, 1.5, size=(n_layers - 1, 1))
        wobble = np.stack(
            [smooth_curve(rng, nx, amplitude=0.015 * aspect) for _ in range(n_layers - 1)]
        )
        tops = np.sort(tops + scale * fold[None, :] + wobble, axis=0)
    return tops


def fault_shifted_depth(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Cell depths (fractions) after one or two normal/reverse faults, (nz, nx) float64.

    Each fault is a straight line dipping 50-85 degrees (in cell units, i.e. for dx == dz)
    crossing mid-depth somewhere in the middle 60 % of the width; cells on its hanging-wall side
    read the layering from a depth shifted by the throw (4-15 % of the grid depth, either sign).
    """
    nz, nx = shape
    depth = np.broadcast_to(depth_grid(nz), shape).copy()
    z_cells = np.arange(nz)[:, None]
    x_cells = np.arange(nx)[None, :]
    for _ in range(rng.integers(1, 3)):
        x_mid = rng.uniform(0.2, 0.8) * nx
        dip = np.deg2rad(rng.uniform(50.0, 85.0))
        lean = rng.choice([-1.0, 1.0])
        fault_x = x_mid + lean * (z_cells - nz / 2) / np.tan(dip)
        hanging = x_cells > fault_x
        throw = rng.uniform(0.04, 0.15) * rng.choice([-1.0, 1.0])
        depth -= throw * hanging
    return depth


def layered_unit_map(
    rng: np.random.Generator, shape: tuple[int, int], curved: bool, faulted: bool
) -> np.ndarray:
    """A layered map in unit velocities [0, 1], (nz, nx): 2-6 layers, optionally folded/faulted."""
    n_layers = int(rng.integers(2, 7))
    interfaces = layer_interfaces(rng, n_layers, shape, curved)
    unit = layer_unit_velocities(rng, n_layers)
    depth = fault_shifted_depth(rng, shape) if faulted else depth_grid(shape[0])
    return unit[label_layers(interfaces, depth)]


@FAMILIES.register("flat")
def flat(rng: np.random.Generator, shape: tuple[int, int], vrange: tuple[float, float]) -> np.ndarray:
    """FlatVel-like: 2-6 horizontal layers, velocity mostly increasing downwards; (nz, nx)."""
    return to_velocity(layered_unit_map(rng, shape, curved=False, faulted=False), vrange)


@FAMILIES.register("curved")
def curved(rng: np.random.Generator, shape: tuple[int, int], vrange: tuple[float, float]) -> np.ndarray:
    """CurveVel-like: 2-6 folded layers sharing one smooth fold shape; (nz, nx)."""
    return to_velocity(layered_unit_map(rng, shape, curved=True, faulted=False), vrange)


@FAMILIES.register("flatfault")
def flatfault(
    rng: np.random.Generator, shape: tuple[int, int], vrange: tuple[float, float]
) -> np.ndarray:
    """FlatFault-like: flat layers offset along one or two dipping faults; (nz, nx)."""
    return to_velocity(layered_unit_map(rng, shape, curved=False, faulted=True), vrange)


@FAMILIES.register("curvefault")
def curvefault(
    rng: np.random.Generator, shape: tuple[int, int], vrange: tuple[float, float]
) -> np.ndarray:
    """CurveFault-like: folded layers offset along one or two dipping faults; (nz, nx)."""
    return to_velocity(layered_unit_map(rng, shape, curved=True, faulted=True), vrange)


@FAMILIES.register("fault")
def fault(rng: np.random.Generator, shape: tuple[int, int], vrange: tuple[float, float]) -> np.ndarray:
    """Alias: ``flatfault`` or ``curvefault`` with equal odds; (nz, nx).

    ``seisinv.geology.velocity_sample`` resolves the alias from the sample seed instead (so the
    concrete family can be recorded); calling this builder directly draws the choice from ``rng``.
    """
    builder = flatfault if rng.random() < 0.5 else curvefault
    return builder(rng, shape, vrange)
