"""The ``style`` family: smooth random fields on a layered background (after OpenFWI's Style
families, which are smooth, textured maps with a depth trend rather than sharp layers)."""

from __future__ import annotations

import numpy as np

from seisinv.geology.base import FAMILIES
from seisinv.geology.fields import depth_grid, gaussian_blur, smooth_field, to_velocity
from seisinv.geology.layered import layered_unit_map


@FAMILIES.register("style")
def style(rng: np.random.Generator, shape: tuple[int, int], vrange: tuple[float, float]) -> np.ndarray:
    """Smooth random field + blurred folded layering + depth trend; (nz, nx) in ``vrange`` units.

    The random field has horizontal correlation lengths 10-40 % of the width and vertical ones
    2-8 % of the depth, so it reads as lens-shaped, layer-parallel texture.
    """
    nz, nx = shape
    layers = layered_unit_map(rng, shape, curved=True, faulted=rng.random() < 0.3)
    layers = gaussian_blur(layers, sigma=(0.02 * nz + 0.5, 0.02 * nx + 0.5))
    texture = smooth_field(rng, shape, corr_z=rng.uniform(0.02, 0.08), corr_x=rng.uniform(0.1, 0.4))
    trend = np.broadcast_to(depth_grid(nz), shape)
    unit = 0.45 * layers + 0.4 * trend + 0.08 * texture
    # Stretch to a random sub-range of [0, 1] so maps differ in contrast as well as shape.
    low, high = rng.uniform(0.0, 0.3), rng.uniform(0.65, 1.0)
    span = unit.max() - unit.min()
    unit = low + (unit - unit.min()) / (span if span > 0 else 1.0) * (high - low)
    return to_velocity(unit, vrange)
