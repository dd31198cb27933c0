"""The ``mix`` family: ``w * V1 + (1 - w) * V2`` of two randomly flipped maps, the augmentation
the Speed & Structure winners used to widen the training distribution.

``MixOptions`` sets the weight's range (default uniform in [0, 1]; the GWI 3rd place blended
OpenFWI maps with alpha in [0.3, 0.7]) and whether the maps are flipped first (``flips=False``
gives exactly ``w * V1 + (1 - w) * V2``, as the Speed & Structure CAFormer experiment needs).

Mixed maps are synthetic: they must never enter a validation fold (the generator records their
family as ``mix``). A convex combination of two maps inside ``[vmin, vmax]`` stays inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seisinv.errors import SeisinvError
from seisinv.geology.base import FAMILIES, seisinv_family_names


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


@dataclass(frozen=True)
class MixOptions:
    """How ``mix`` blends two maps.

    Attributes:
        flips: mirror each map left-right with a fair coin first (seisinv 0.1.0 behaviour);
            False blends the maps as they are.
        weight: (low, high) range of the uniform weight ``w`` of the first map, inside [0, 1].
    """

    flips: bool = True
    weight: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        lo, hi = (float(v) for v in self.weight)
        if not 0.0 <= lo <= hi <= 1.0:
            raise SeisinvError(
                f"mix weight range {lo:g}..{hi:g}: expected 0 <= low <= high <= 1"
            )
        object.__setattr__(self, "weight", (lo, hi))

    @property
    def is_default(self) -> bool:
        return self == MixOptions()


def mix_pair(
    rng: np.random.Generator, v1: np.ndarray, v2: np.ndarray, options: MixOptions | None = None
) -> np.ndarray:
    """Mix two maps: weight uniform in ``options.weight``, fair-coin flips unless
    ``options.flips`` is False; (nz, nx). The random draws are made in the same order either
    way, so ``flips=False`` only drops the flips."""
    options = options or MixOptions()
    weight = float(rng.uniform(*options.weight))
    flip1, flip2 = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
    if not options.flips:
        flip1 = flip2 = False
    return mix_maps(v1, v2, weight, flip1, flip2)


def mix_from_pool(
    rng: np.random.Generator, pool: np.ndarray, options: MixOptions | None = None
) -> np.ndarray:
    """Mix two distinct maps drawn from ``pool`` (n, nz, nx) (the same map twice if n == 1)."""
    n = len(pool)
    i, j = rng.choice(n, size=2, replace=n < 2)
    return mix_pair(
        rng, np.asarray(pool[i], np.float32), np.asarray(pool[j], np.float32), options
    )


def mix_fresh(
    rng: np.random.Generator,
    shape: tuple[int, int],
    vrange: tuple[float, float],
    options: MixOptions | None = None,
) -> np.ndarray:
    """Mix two fresh maps of randomly chosen base families (flat, curved, ..., salt); (nz, nx)."""
    names = seisinv_family_names()
    first, second = rng.choice(names, size=2)
    v1 = FAMILIES.get(str(first))(rng, shape, vrange)
    v2 = FAMILIES.get(str(second))(rng, shape, vrange)
    return mix_pair(rng, v1, v2, options)


@FAMILIES.register("mix")
def mix(rng: np.random.Generator, shape: tuple[int, int], vrange: tuple[float, float]) -> np.ndarray:
    """Mix two fresh maps of randomly chosen base families (flat, curved, ..., salt); (nz, nx)."""
    return mix_fresh(rng, shape, vrange)
