"""Seeded sampling of velocity maps: ``generate_velocity`` and the per-sample seeds behind it.

Sample ``i`` of a run with seed ``s`` is built from its own seed ``sample_seed(s, i)``, so any
sample can be rebuilt alone (``velocity_sample(family, survey, sample_seed(s, i))``) and a job
split into shards or resumed after a crash reproduces exactly the same maps.
"""

from __future__ import annotations

import zlib

import numpy as np

from seisinv.errors import SeisinvError

# Importing the family modules registers their builders.
from seisinv.geology import layered, mix, openfwi, salt, style, transform  # noqa: F401
from seisinv.geology.base import ALIASES, FAMILIES
from seisinv.geology.mix import MixOptions, mix_fresh, mix_from_pool
from seisinv.geology.transform import TransformOptions, transform_from_pool
from seisinv.survey import Survey


def family_names() -> list[str]:
    """Every name ``generate_velocity`` accepts (families and aliases), sorted."""
    return FAMILIES.names()


def check_family(family: str) -> str:
    """Return ``family`` if known; else raise SeisinvError listing the known names."""
    if family not in FAMILIES:
        raise SeisinvError(
            f"unknown velocity family {family!r}; known: {', '.join(family_names())}"
        )
    return family


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample ``index`` of a run seeded ``seed``: a 63-bit int from both numbers.

    Uses numpy's SeedSequence hashing so neighbouring (seed, index) pairs give unrelated streams.
    """
    if seed < 0 or index < 0:
        raise SeisinvError(f"seed ({seed}) and sample index ({index}) must be non-negative")
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def resolve_family(family: str, seed: int) -> str:
    """The concrete family a sample with this seed uses: ``family`` itself, or for an alias
    (``fault``) one of its members, chosen from a stream independent of the map's own."""
    check_family(family)
    members = ALIASES.get(family)
    if members is None:
        return family
    pick = np.random.default_rng([int(seed), 1]).integers(len(members))
    return members[int(pick)]


def check_vrange(survey: Survey, vrange: tuple[float, float] | None) -> tuple[float, float]:
    """``vrange`` (or the survey's full range when None), checked to lie inside the survey's.

    Raises:
        SeisinvError: ``vmin >= vmax`` or the range leaves ``[survey.vmin, survey.vmax]``.
    """
    if vrange is None:
        return (survey.vmin, survey.vmax)
    lo, hi = float(vrange[0]), float(vrange[1])
    if not lo < hi:
        raise SeisinvError(f"velocity range {lo:g}..{hi:g}: vmin must be below vmax")
    if lo < survey.vmin or hi > survey.vmax:
        raise SeisinvError(
            f"velocity range {lo:g}..{hi:g} {survey.units} is outside survey {survey.name!r}'s "
            f"{survey.vmin:g}..{survey.vmax:g} {survey.units}"
        )
    return (lo, hi)


def velocity_sample(
    family: str,
    survey: Survey,
    seed: int,
    *,
    vrange: tuple[float, float] | None = None,
    pool: np.ndarray | None = None,
    mix_options: MixOptions | None = None,
    transform_options: TransformOptions | None = None,
) -> np.ndarray:
    """One velocity map of ``family`` built from ``seed``.

    Args:
        family: a name in ``FAMILIES`` (aliases such as ``fault`` resolve via ``resolve_family``).
        survey: gives the grid (nz, nx) and, unless ``vrange`` is set, the velocity range.
        seed: the sample's own seed (see ``sample_seed``).
        vrange: (vmin, vmax) in survey units, inside the survey's range.
        pool: (n, nz, nx) existing maps in survey units; ``mix`` then blends two of them and
            ``transform`` warps one of them instead of fresh maps. Ignored by other families.
        mix_options: ``mix``'s weight range and flips (default: uniform [0, 1], flips).
        transform_options: ``transform``'s crop and warp ranges (default ``TransformOptions()``).

    Returns:
        (nz, nx) float32 velocity in survey units, depth first, inside ``vrange``.
    """
    lo, hi = check_vrange(survey, vrange)
    concrete = resolve_family(family, seed)
    # The family name joins the seed so that, e.g., flat and flatfault maps of one seed are not
    # the same layering with and without a fault.
    rng = np.random.default_rng([int(seed), zlib.crc32(concrete.encode())])
    if concrete == "mix" and pool is not None:
        velocity = np.clip(mix_from_pool(rng, pool, mix_options), lo, hi)
    elif concrete == "mix" and mix_options is not None:
        velocity = mix_fresh(rng, survey.velocity_shape, (lo, hi), mix_options)
    elif concrete == "transform" and pool is not None:
        velocity = np.clip(transform_from_pool(rng, pool, transform_options), lo, hi)
    else:
        velocity = FAMILIES.get(concrete)(rng, survey.velocity_shape, (lo, hi))
    return velocity.astype(np.float32, copy=False)


def generate_velocity(
    family: str,
    n: int,
    survey: Survey,
    seed: int,
    *,
    start: int = 0,
    vrange: tuple[float, float] | None = None,
    pool: np.ndarray | None = None,
    mix_options: MixOptions | None = None,
    transform_options: TransformOptions | None = None,
) -> np.ndarray:
    """``n`` velocity maps of ``family``: samples ``start .. start + n - 1`` of a run seeded ``seed``.

    Sample ``i`` is ``velocity_sample(family, survey, sample_seed(seed, i))``, so results do not
    depend on how a run is split: ``generate_velocity(f, 4, s, 7)[2:]`` equals
    ``generate_velocity(f, 2, s, 7, start=2)``.

    Returns:
        (n, nz, nx) float32 velocity in survey units, axis 1 is depth (down), values inside
        ``vrange`` (default the survey's ``[vmin, vmax]``).
    """
    check_family(family)
    if n < 0:
        raise SeisinvError(f"number of samples must be >= 0, got {n}")
    maps = np.empty((n, *survey.velocity_shape), dtype=np.float32)
    for i in range(n):
        maps[i] = velocity_sample(
            family, survey, sample_seed(seed, start + i), vrange=vrange, pool=pool,
            mix_options=mix_options, transform_options=transform_options,
        )
    return maps
