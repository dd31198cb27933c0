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


def base_family_names() -> list[str]:
    """Concrete families that build a map from scratch (every family but aliases and ``mix``)."""
    return [name for name in FAMILIES.names() if name not in ALIASES and name != "mix"]
