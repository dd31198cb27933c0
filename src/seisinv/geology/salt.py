"""The ``salt`` family: folded sediments intruded by high-velocity salt bodies (domes, some with
a stem reaching the bottom of the model)."""

from __future__ import annotations

import numpy as np

from seisinv.geology.base import FAMILIES
from seisinv.geology.fields import smooth_curve, smooth_field, to_velocity
from seisinv.geology.layered import layered_unit_map


def salt_mask(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Boolean (nz, nx) mask of one salt body: a rough ellipse in the middle-to-lower part,
    sometimes with a stem (diapir root) down to the bottom edge."""
    nz, nx = shape
    z = np.arange(nz)[:, None]
    x = np.arange(nx)[None, :]
    zc, xc = rng.uniform(0.35, 0.75) * nz, rng.uniform(0.2, 0.8) * nx
    rz, rx = rng.uniform(0.08, 0.2) * nz + 1, rng.uniform(0.1, 0.3) * nx + 1
    rough = 0.4 * smooth_field(rng, shape, corr_z=0.05, corr_x=0.05)
    mask = ((z - zc) / rz) ** 2 + ((x - xc) / rx) ** 2 + rough < 1.0
    if rng.random() < 0.6:
        half_width = 0.4 * rx * (1.0 + smooth_curve(rng, nz, amplitude=0.3))[:, None]
        mask |= (z > zc) & (np.abs(x - xc) < half_width)
    return mask


@FAMILIES.register("salt")
def salt(rng: np.random.Generator, shape: tuple[int, int], vrange: tuple[float, float]) -> np.ndarray:
    """Folded layers in the lower 75 % of ``vrange`` plus 1-2 salt bodies at 90-100 %; (nz, nx)."""
    background = 0.75 * layered_unit_map(rng, shape, curved=True, faulted=False)
    for _ in range(rng.integers(1, 3)):
        background[salt_mask(rng, shape)] = rng.uniform(0.9, 1.0)
    return to_velocity(background, vrange)
