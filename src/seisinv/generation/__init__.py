"""The ``seisinv generate`` and ``seisinv simulate`` jobs (geology + physics + writers).

    >>> from seisinv.generation import GenerateSpec, run_generate
    >>> spec = GenerateSpec(OPENFWI, ("flat", "curved", "fault"), n=1000, seed=0)
    >>> run_generate(spec, "synthetic/")          # resumable, shardable (see docs/generate.md)
"""

from seisinv.generation.common import auto_batch
from seisinv.generation.job import GenerateReport, GenerateSpec, Shard, run_generate
from seisinv.generation.manifest import MANIFEST_COLUMNS, read_manifest
from seisinv.generation.maps import VelocityMaps, check_velocity_values
from seisinv.generation.simulate_job import SimulateReport, run_simulate

__all__ = [
    "MANIFEST_COLUMNS",
    "GenerateReport",
    "GenerateSpec",
    "Shard",
    "SimulateReport",
    "VelocityMaps",
    "auto_batch",
    "check_velocity_values",
    "read_manifest",
    "run_generate",
    "run_simulate",
]
