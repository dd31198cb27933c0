"""The ``transform`` family: map augmentation of existing maps, as the GWI Kaggle 1st place made
new training maps from OpenFWI's (random crops re-sized to the grid, mild affine warps, seeded;
the gathers are then simulated for the new map, so map and data stay consistent).

One resampling does it all: output cell ``(i, j)`` reads the source map at
``origin + A @ (i * sz, j * sx)`` with bilinear interpolation (``scipy.ndimage.map_coordinates``,
order 1, edge values beyond the border). Bilinear values are convex combinations of source
values, so a transformed map stays inside the source map's range. Transformed maps are synthetic:
their family is recorded as ``transform`` and they must never enter a validation fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import map_coordinates

from seisinv.errors import SeisinvError
from seisinv.geology.base import FAMILIES, seisinv_family_names


@dataclass(frozen=True)
class TransformOptions:
    """Ranges of the random warp (seisinv's choice of "mild"; the 1st place did not publish
    theirs).

    Attributes:
        crop: (low, high) side of the crop as a fraction of the map's side, drawn per axis.
        rotation_deg: largest rotation either way, degrees.
        shear: largest horizontal shear (x shift per unit depth) either way.
        flip: chance of mirroring left-right.
    """

    crop: tuple[float, float] = (0.6, 1.0)
    rotation_deg: float = 5.0
    shear: float = 0.1
    flip: float = 0.5

    def __post_init__(self) -> None:
        lo, hi = self.crop
        if not 0.0 < lo <= hi <= 1.0:
            raise SeisinvError(f"transform crop range {lo:g}..{hi:g}: expected 0 < low <= high <= 1")
        if self.rotation_deg < 0 or self.shear < 0 or not 0.0 <= self.flip <= 1.0:
            raise SeisinvError("transform: rotation_deg and shear must be >= 0, flip in [0, 1]")


def transform_map(
    rng: np.random.Generator, velocity: np.ndarray, options: TransformOptions | None = None
) -> np.ndarray:
    """A randomly cropped, re-sized and mildly warped copy of ``velocity`` (nz, nx), same shape,
    float32, values inside ``[velocity.min(), velocity.max()]``."""
    options = options or TransformOptions()
    source = np.asarray(velocity, dtype=np.float64)
    nz, nx = source.shape
    fz, fx = rng.uniform(*options.crop, size=2)
    # Crop size in source cells and its top-left corner, fully inside the map.
    hz, hx = fz * (nz - 1), fx * (nx - 1)
    z0, x0 = rng.uniform(0.0, (nz - 1) - hz), rng.uniform(0.0, (nx - 1) - hx)
    angle = np.deg2rad(rng.uniform(-options.rotation_deg, options.rotation_deg))
    shear = rng.uniform(-options.shear, options.shear)
    flip = rng.random() < options.flip
    # Output coordinates as fractions in [0, 1], centred for the rotation.
    u = np.linspace(0.0, 1.0, nz)[:, None] - 0.5
    v = np.linspace(0.0, 1.0, nx)[None, :] - 0.5
    if flip:
        v = -v
    cos, sin = np.cos(angle), np.sin(angle)
    ru = cos * u - sin * v
    rv = sin * u + cos * v + shear * u
    z = z0 + (ru + 0.5) * hz
    x = x0 + (rv + 0.5) * hx
    warped = map_coordinates(source, [np.broadcast_to(z, (nz, nx)), np.broadcast_to(x, (nz, nx))],
                             order=1, mode="nearest")
    return np.clip(warped, source.min(), source.max()).astype(np.float32)


def transform_from_pool(
    rng: np.random.Generator, pool, options: TransformOptions | None = None
) -> np.ndarray:
    """``transform_map`` of one map drawn from ``pool`` ((n, nz, nx) array or indexable)."""
    i = int(rng.integers(len(pool)))
    return transform_map(rng, np.asarray(pool[i], np.float32), options)


@FAMILIES.register("transform")
def transform(
    rng: np.random.Generator, shape: tuple[int, int], vrange: tuple[float, float]
) -> np.ndarray:
    """Without a pool of maps: ``transform_map`` of a fresh map of a random seisinv family."""
    name = str(rng.choice(seisinv_family_names()))
    return transform_map(rng, FAMILIES.get(name)(rng, shape, vrange))
