"""Velocity-model families: seeded generators of (n, nz, nx) float32 maps in survey units.

Families (``FAMILIES`` registry), mirroring OpenFWI plus two extras:
``flat``, ``curved``, ``flatfault``, ``curvefault`` (alias ``fault`` picks either), ``style``,
``salt``, and ``mix`` (``w*V1 + (1-w)*V2`` of flipped maps; synthetic, never for validation).

    >>> from seisinv.geology import generate_velocity
    >>> maps = generate_velocity("curved", 8, OPENFWI, seed=0)   # (8, 70, 70) m/s
"""

from seisinv.geology.base import ALIASES, FAMILIES, base_family_names
from seisinv.geology.mix import mix_from_pool, mix_maps
from seisinv.geology.sampling import (
    check_family,
    check_vrange,
    family_names,
    generate_velocity,
    resolve_family,
    sample_seed,
    velocity_sample,
)

__all__ = [
    "ALIASES",
    "FAMILIES",
    "base_family_names",
    "check_family",
    "check_vrange",
    "family_names",
    "generate_velocity",
    "mix_from_pool",
    "mix_maps",
    "resolve_family",
    "sample_seed",
    "velocity_sample",
]
