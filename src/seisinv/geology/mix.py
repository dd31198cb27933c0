"""The ``mix`` family: ``w * V1 + (1 - w) * V2`` of two randomly flipped maps, the augmentation
the Speed & Structure winners used to widen the training distribution.

Mixed maps are synthetic: they must never enter a validation fold (the generator records their
family as ``mix``). A convex combination of two maps inside ``[vmin, vmax]`` stays inside it.
"""

from __future__ import annotations

import numpy as np

from seisinv.geology.base import FAMILIES, base_family_names


def mix_maps(v1: np.ndarray, v2: np.ndarray, weight: float, flip1: bool, flip2: bool) -> np.ndarray:
    """``weight * v1 + (1 - weight) * v2`` after optional horizontal flips; (nz, nx) float32.

    Args:
        v1, v2: (nz, nx) velocity maps, depth first, same units.
        weight: mixing weight in [0, 1].
        flip1, flip2: mirror that map left-right (axis 1) first.
    """
    a = v1[:, ::-1] if flip1 else v1
    b = v2[:, ::-1] if flip2 else v2
    return (weight * a + (1.0 - weight) * b).astype(np.float32)


def mix_pair(rng: np.random.Generator, v1: np.ndarray, v2: np.ndarray) -> np.ndarray:
    """Mix two maps with a weight drawn uniformly from [0, 1] and fair-coin flips; (nz, nx)."""
    weight = float(rng.uniform(0.0, 1.0))
    flip1, flip2 = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
    return mix_maps(v1, v2, weight, flip1, flip2)


def mix_from_pool(rng: np.random.Generator, pool: np.ndarray) -> np.ndarray:
    """Mix two distinct maps drawn from ``pool`` (n, nz, nx) (the same map twice if n == 1)."""
    n = len(pool)
    i, j = rng.choice(n, size=2, replace=n < 2)
    return mix_pair(rng, np.asarray(pool[i], np.float32), np.asarray(pool[j], np.float32))


@FAMILIES.register("mix")
def mix(rng: np.random.Generator, shape: tuple[int, int], vrange: tuple[float, float]) -> np.ndarray:
    """Mix two fresh maps of randomly chosen base families (flat, curved, ..., salt); (nz, nx)."""
    names = base_family_names()
    first, second = rng.choice(names, size=2)
    v1 = FAMILIES.get(str(first))(rng, shape, vrange)
    v2 = FAMILIES.get(str(second))(rng, shape, vrange)
    return mix_pair(rng, v1, v2)
