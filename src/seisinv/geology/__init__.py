"""Velocity-model families: seeded generators of (n, nz, nx) float32 maps in survey units.

Families (``FAMILIES`` registry), mirroring OpenFWI plus two extras:
``flat``, ``curved``, ``flatfault``, ``curvefault`` (alias ``fault`` picks either), ``style``,
``salt``, ``mix`` (``w*V1 + (1-w)*V2`` of flipped maps; synthetic, never for validation),
``transform`` (cropped, re-sized, mildly warped maps; synthetic), and the ten OpenFWI families
``FlatVel_A`` ... ``Style_B`` (``seisinv.geology.openfwi``; the group name ``openfwi`` expands
to all ten via ``expand_families``).

    >>> from seisinv.geology import generate_velocity
    >>> maps = generate_velocity("curved", 8, OPENFWI, seed=0)   # (8, 70, 70) m/s
"""

from seisinv.geology.base import ALIASES, FAMILIES, GROUPS, base_family_names, expand_families
from seisinv.geology.mix import MixOptions, mix_from_pool, mix_maps
from seisinv.geology.sampling import (
    check_family,
    check_vrange,
    family_names,
    generate_velocity,
    resolve_family,
    sample_seed,
    velocity_sample,
)
from seisinv.geology.transform import TransformOptions, transform_map

__all__ = [
    "ALIASES",
    "FAMILIES",
    "GROUPS",
    "MixOptions",
    "TransformOptions",
    "base_family_names",
    "expand_families",
    "check_family",
    "check_vrange",
    "family_names",
    "generate_velocity",
    "mix_from_pool",
    "mix_maps",
    "resolve_family",
    "sample_seed",
    "transform_map",
    "velocity_sample",
]
