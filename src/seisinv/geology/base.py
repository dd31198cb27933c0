"""The ``FAMILIES`` registry of velocity-model families and the builder signature they share.

A family builder is a pure function of a random generator::

    builder(rng: np.random.Generator, shape: (nz, nx), vrange: (vmin, vmax)) -> (nz, nx) float32

returning one velocity map, depth first (axis 0 points down), with values inside ``vrange`` (the
survey's units). Builders draw every random number from ``rng`` so a seed reproduces a map.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from seisinv.registry import Registry

FamilyBuilder = Callable[[np.random.Generator, tuple[int, int], tuple[float, float]], np.ndarray]

FAMILIES: Registry[FamilyBuilder] = Registry("velocity family")

# Names that pick one of several concrete families per sample; the choice is recorded, so the
# manifest of a generated dataset always names the concrete family.
ALIASES: dict[str, tuple[str, ...]] = {"fault": ("flatfault", "curvefault")}


# Families built from other maps (two blended, or one warped), not from scratch.
DERIVED: tuple[str, ...] = ("mix", "transform")

# Named groups ``--families`` accepts, expanded in order (``expand_families``).
GROUPS: dict[str, tuple[str, ...]] = {
    "openfwi": (
        "FlatVel_A", "FlatVel_B", "CurveVel_A", "CurveVel_B", "FlatFault_A", "FlatFault_B",
        "CurveFault_A", "CurveFault_B", "Style_A", "Style_B",
    ),
}


def base_family_names() -> list[str]:
    """Concrete families that build a map from scratch (every family but aliases, ``mix`` and
    ``transform``)."""
    return [name for name in FAMILIES.names() if name not in ALIASES and name not in DERIVED]


def seisinv_family_names() -> list[str]:
    """seisinv's own from-scratch families (``flat`` ... ``salt``), which fresh ``mix`` and
    ``transform`` maps draw from, as in seisinv 0.1.0 (the OpenFWI families are left out)."""
    return [name for name in base_family_names() if name not in GROUPS["openfwi"]]


def expand_families(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``names`` with every group (``openfwi``) replaced by its members, order kept."""
    out: list[str] = []
    for name in names:
        out.extend(GROUPS.get(name, (name,)))
    return tuple(out)
