"""Acquisition geometry as data: one frozen ``Survey`` per challenge, plus user surveys from YAML.

This module is the one place that knows the numbers of each challenge (grid sizes, spacing, time
step, source and receiver positions, velocity range, on-disk layout). Every other module asks the
survey instead of repeating a literal.

Conventions used throughout seisinv:
- Internally a velocity map is ``(nz, nx)``: axis 0 is depth (down), axis 1 is horizontal.
- Positions are stored in metres from the top-left grid node (x to the right, z down). Cell indices
  are derived: ``index = round(position / spacing)``; ``*_cells`` properties return them.
- Gathers are ``(shots, time, receivers)`` float32, the layout both challenges store.
- Velocities are in the survey's ``units`` ("m/s" for OpenFWI, "km/s" for Speed & Structure);
  ``to_mps`` converts a value in those units to m/s for the physics.
"""

from __future__ import annotations

import os
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from seisinv.errors import ConfigError

# Velocity checks (``Survey.velocity_problems``). Values may leave [vmin, vmax] by these fractions
# of the range: data are refused only far outside it (garbage, not a slightly wider survey),
# while `seisinv check` reports smaller excursions (real maps touch the ends, resampled or
# smoothed maps overshoot them slightly).
VELOCITY_SLACK = 0.5
CHECK_SLACK = 0.1
# A median above this many km/s is in m/s; below this many m/s it is in km/s. Rock velocities are
# 0.3..9 km/s, so the two unit systems never overlap around these values.
KMS_LIMIT = 20.0
MPS_LIMIT = 100.0


class Simulation(BaseModel):
    """Finite-difference settings for forward modelling this survey (see ``seisinv.physics``).

    Attributes:
        accuracy: spatial order of the finite-difference stencil (2, 4, 6 or 8).
        boundary: "pml" (deepwave's convolutional PML) or "damping" (OpenFWI-style sponge).
        boundary_width: absorbing-layer width in internal-grid cells on each of the four sides.
        free_surface: reflecting top boundary instead of an absorbing one.
        coarsen: integer factor by which the internal grid is coarser than the survey grid
            (1 = simulate on the survey grid). Only used where its error was measured acceptable.
        internal_dt: internal time step in seconds (None: the recording ``dt``, reduced by the
            propagator if stability needs it).
        courant_number: Courant number the propagator's stability check targets
            (``v_max dt sqrt(1/dz^2 + 1/dx^2)``); 0.7 keeps dt = 1 ms at 10 m and 0.1 ms at 1 m
            without internal sub-stepping for 4th order (critical ~0.87).
        source_scale: factor multiplying the unit-peak Ricker before injection; sets the
            amplitude convention of synthetic gathers (see docs/physics.md).
        gradient_interval: propagator time steps between contributions to the velocity
            gradient (deepwave's ``model_gradient_sampling_interval``; only gradients change).
            1 samples every step; None picks the largest interval that still samples the
            wavefields above twice ``GRADIENT_BAND_FACTOR`` x the wavelet's peak frequency
            (``gradient_interval_for``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    accuracy: Literal[2, 4, 6, 8] = 4
    boundary: Literal["pml", "damping"] = "pml"
    boundary_width: int = Field(20, ge=0)
    free_surface: bool = False
    coarsen: int = Field(1, ge=1)
    internal_dt: float | None = Field(None, gt=0)
    courant_number: float = Field(0.7, gt=0)
    source_scale: float = 1.0
    gradient_interval: int | None = Field(None, ge=1)


class Survey(BaseModel):
    """A seismic acquisition survey and the array layout of its data on disk.

    Attributes:
        name: preset or user name.
        nz, nx: velocity grid size, depth x horizontal cells.
        dz, dx: grid spacing in metres.
        dt: recording sample interval in seconds.
        nt: number of recorded time samples per trace.
        source_x: horizontal source positions in metres, one per shot.
        source_z: source depth in metres (all shots).
        receiver_x: horizontal receiver positions in metres (same for every shot).
        receiver_z: receiver depth in metres.
        frequency: Ricker wavelet peak frequency in Hz.
        wavelet_peak_time: time of the wavelet's peak in seconds (None: the physics default).
        vmin, vmax: velocity range of the survey, in ``units``.
        units: velocity units of the on-disk velocity maps, "m/s" or "km/s".
        layout: on-disk format family: "openfwi" (stacked .npy files of many samples) or
            "speed-structure" (a folder per sample).
        velocity_axes: order of the on-disk velocity array's axes: "zx" (depth first, OpenFWI)
            or "xz" (horizontal first, Speed & Structure).
        shot_names: per-shot file suffixes for folder layouts (``receiver_data_src_{name}.npy``).
        simulation: finite-difference settings.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    nz: int = Field(gt=1)
    nx: int = Field(gt=1)
    dz: float = Field(gt=0)
    dx: float = Field(gt=0)
    dt: float = Field(gt=0)
    nt: int = Field(gt=1)
    source_x: tuple[float, ...]
    source_z: float = Field(ge=0)
    receiver_x: tuple[float, ...]
    receiver_z: float = Field(ge=0)
    frequency: float = Field(gt=0)
    wavelet_peak_time: float | None = None
    vmin: float = Field(gt=0)
    vmax: float = Field(gt=0)
    units: Literal["m/s", "km/s"] = "m/s"
    layout: Literal["openfwi", "speed-structure"] = "openfwi"
    velocity_axes: Literal["zx", "xz"] = "zx"
    shot_names: tuple[str, ...] | None = None
    simulation: Simulation = Simulation()

    @model_validator(mode="after")
    def _consistent(self) -> Survey:
        if self.vmin >= self.vmax:
            raise ValueError(f"vmin ({self.vmin}) must be below vmax ({self.vmax})")
        if not self.source_x or not self.receiver_x:
            raise ValueError("a survey needs at least one source and one receiver")
        if self.shot_names is not None and len(self.shot_names) != len(self.source_x):
            raise ValueError(
                f"shot_names has {len(self.shot_names)} entries but there are "
                f"{len(self.source_x)} sources"
            )
        width, depth = (self.nx - 1) * self.dx, (self.nz - 1) * self.dz
        for label, xs in (("source_x", self.source_x), ("receiver_x", self.receiver_x)):
            bad = [x for x in xs if x < 0 or x > width + self.dx]
            if bad:
                raise ValueError(f"{label} {bad} outside the grid's 0..{width + self.dx} m")
        for label, z in (("source_z", self.source_z), ("receiver_z", self.receiver_z)):
            if z > depth:
                raise ValueError(f"{label} {z} m is below the grid's {depth} m")
        return self

    # ---- derived geometry -------------------------------------------------------------
    @property
    def n_shots(self) -> int:
        return len(self.source_x)

    @property
    def n_receivers(self) -> int:
        return len(self.receiver_x)

    @property
    def gather_shape(self) -> tuple[int, int, int]:
        """Shape of one sample's gathers: (shots, time samples, receivers)."""
        return (self.n_shots, self.nt, self.n_receivers)

    @property
    def velocity_shape(self) -> tuple[int, int]:
        """Internal velocity shape (nz, nx), depth first."""
        return (self.nz, self.nx)

    @property
    def disk_velocity_shape(self) -> tuple[int, int]:
        """On-disk velocity shape: (nz, nx) for "zx", (nx, nz) for "xz"."""
        return (self.nz, self.nx) if self.velocity_axes == "zx" else (self.nx, self.nz)

    @property
    def duration(self) -> float:
        """Record length in seconds, ``(nt - 1) * dt``."""
        return (self.nt - 1) * self.dt

    def _cells(self, positions: tuple[float, ...], spacing: float, n: int) -> np.ndarray:
        # Positions past the last node (Speed & Structure's receiver at x = 300 m on a
        # 0..299 m grid) snap to the last cell.
        return np.clip(np.rint(np.asarray(positions) / spacing), 0, n - 1).astype(np.int64)

    @cached_property
    def source_cells(self) -> np.ndarray:
        """Source cell indices, (shots, 2) int64 as (z index, x index)."""
        x = self._cells(self.source_x, self.dx, self.nx)
        z = self._cells((self.source_z,) * self.n_shots, self.dz, self.nz)
        return np.stack([z, x], axis=1)

    @cached_property
    def receiver_cells(self) -> np.ndarray:
        """Receiver cell indices, (receivers, 2) int64 as (z index, x index)."""
        x = self._cells(self.receiver_x, self.dx, self.nx)
        z = self._cells((self.receiver_z,) * self.n_receivers, self.dz, self.nz)
        return np.stack([z, x], axis=1)

    # ---- units and layouts ------------------------------------------------------------
    @property
    def to_mps(self) -> float:
        """Factor converting a velocity in this survey's units to m/s."""
        return 1000.0 if self.units == "km/s" else 1.0

    def velocity_problems(self, velocity, slack: float = VELOCITY_SLACK) -> list[str]:
        """What is wrong with velocity values for this survey ([] when nothing): the one
        units and range check that readers, generation, submission and ``seisinv check`` share
        (``simulate`` applies the same rules to its min/max through ``range_problems``).

        Args:
            velocity: an array of any shape in this survey's ``units`` (axis order irrelevant).
            slack: allowed excursion beyond ``[vmin, vmax]`` as a fraction of ``vmax - vmin``
                (``VELOCITY_SLACK`` to accept data; ``seisinv check`` reports at
                ``CHECK_SLACK``; submissions use a tolerance near 0).

        Order of the checks: empty, NaN/Inf, then ``range_problems`` with the median.
        """
        values = np.asarray(velocity)
        if values.size == 0:
            return ["holds no velocity values"]
        finite = np.isfinite(values)
        if not finite.all():
            return [f"velocity contains {int(finite.size - finite.sum())} NaN/Inf values"]
        flat = values.reshape(-1)
        median = float(np.median(flat[:: max(1, flat.size // 4096)]))
        return self.range_problems(float(values.min()), float(values.max()), slack, median)

    def range_problems(self, low: float, high: float, slack: float = VELOCITY_SLACK,
                       median: float | None = None) -> list[str]:
        """``velocity_problems`` from summary values only: velocities spanning ``low..high``
        (survey units) with ``median`` (default: the midpoint of ``low`` and ``high``).

        Needs no array, so callers holding device tensors read just their min and max
        (``simulate`` does, every FWI iteration). Checks, in order: finite, positive, units (a
        median below ``MPS_LIMIT`` in an m/s survey is km/s, above ``KMS_LIMIT`` in a km/s
        survey is m/s), range (with a hint when the values are a power of ten off).
        """
        if not (np.isfinite(low) and np.isfinite(high)):
            return [f"velocity must be finite, found range {low:g}..{high:g}"]
        if low <= 0:
            return [f"velocity must be positive, found minimum {low:g}"]
        median = 0.5 * (low + high) if median is None else median
        expected = f"{self.vmin:g}..{self.vmax:g}"
        if self.units == "m/s" and median < MPS_LIMIT:
            return [f"velocity looks like km/s (values {low:.4g}..{high:.4g}, median "
                    f"{median:.4g}); survey {self.name!r} expects m/s in {expected}: multiply "
                    "by 1000"]
        if self.units == "km/s" and median > KMS_LIMIT:
            return [f"velocity looks like m/s (values {low:.4g}..{high:.4g}, median "
                    f"{median:.4g}); survey {self.name!r} expects km/s in {expected}: divide "
                    "by 1000"]
        margin = slack * (self.vmax - self.vmin)
        if low < self.vmin - margin or high > self.vmax + margin:
            ratio = median / (0.5 * (self.vmin + self.vmax))
            hint = (f"; the values are about {ratio:.3g} times the survey's: wrong scale or units?"
                    if ratio > 5 or ratio < 0.2 else "")
            return [f"velocity range {low:.4g}..{high:.4g} {self.units} outside the survey's "
                    f"{expected} (allowed slack {margin:.3g}){hint}"]
        return []

    def check_velocity(self, velocity, where: str, slack: float = VELOCITY_SLACK) -> None:
        """Raise ``DataError`` naming ``where`` (a file, an argument) when ``velocity_problems``
        finds anything."""
        problems = self.velocity_problems(velocity, slack)
        if problems:
            from seisinv.errors import DataError

            raise DataError(velocity_message(where, problems))

    def velocity_to_disk(self, velocity: np.ndarray) -> np.ndarray:
        """(..., nz, nx) internal velocity -> the on-disk axis order (a view when possible)."""
        return velocity if self.velocity_axes == "zx" else np.swapaxes(velocity, -1, -2)

    def velocity_from_disk(self, velocity: np.ndarray) -> np.ndarray:
        """On-disk velocity (..., *disk_velocity_shape) -> internal (..., nz, nx)."""
        return velocity if self.velocity_axes == "zx" else np.swapaxes(velocity, -1, -2)

    def replace(self, **changes) -> Survey:
        """A copy with some fields changed (validated again)."""
        data = self.model_dump()
        data.update(changes)
        return Survey.model_validate(data)

    def to_dict(self) -> dict:
        """Plain-Python representation, as written to YAML beside runs and datasets."""
        return self.model_dump(mode="json")


def velocity_message(where: str, problems: list[str]) -> str:
    """``"<where>: <problem>; <problem>"`` for ``Survey.velocity_problems``. When ``where`` is
    itself the velocity (the argument ``velocity``), the problems' leading "velocity" is
    dropped: ``velocity: range 1.5e+05..4.5e+05 m/s outside ...``, not ``velocity: velocity
    range ...``; a file keeps it (``F: velocity range ...``)."""
    if where.split()[-1:] == ["velocity"]:
        problems = [p.removeprefix("velocity ") for p in problems]
    return f"{where}: " + "; ".join(problems)


# ---- presets ---------------------------------------------------------------------------
# OpenFWI: 70 x 70 at 10 m, dt 1 ms, 1000 samples, 15 Hz Ricker, 5 sources at x index
# 0, 17, 34, 52, 69 and 70 receivers at every x index, both at depth index 1.
OPENFWI = Survey(
    name="openfwi",
    nz=70,
    nx=70,
    dz=10.0,
    dx=10.0,
    dt=0.001,
    nt=1000,
    source_x=(0.0, 170.0, 340.0, 520.0, 690.0),
    source_z=10.0,
    receiver_x=tuple(10.0 * i for i in range(70)),
    receiver_z=10.0,
    frequency=15.0,
    vmin=1500.0,
    vmax=4500.0,
    units="m/s",
    layout="openfwi",
    velocity_axes="zx",
    # OpenFWI's Ricker peaks on its sample 73 and is injected one step late: 72 ms in seisinv's
    # time axis, confirmed on real Kaggle GWI data (see docs/physics.md).
    wavelet_peak_time=0.072,
    # An 8-cell PML: at most 0.40% relative L2 from OpenFWI's own scheme (20 cells: 0.27%,
    # 10: 0.32%, 6: 0.97%, 4: 4.5%) on a padded 90 x 90 grid instead of 114 x 114, 1.6x fewer
    # cell updates (benchmarks/boundary.py, docs/physics.md).
    simulation=Simulation(accuracy=4, boundary="pml", boundary_width=8),
)

# Speed & Structure: velocity (300 horizontal, 1259 depth) km/s at 1 m; gathers (10001, 31);
# dt 0.1 ms; sources at x = 0, 74, 149, 224, 299 m (files src_1 ... src_300) at 20 m depth;
# 31 receivers at x = 0, 10, ..., 300 m at 10 m depth.
SPEED_STRUCTURE = Survey(
    name="speed-structure",
    nz=1259,
    nx=300,
    dz=1.0,
    dx=1.0,
    dt=0.0001,
    nt=10001,
    source_x=(0.0, 74.0, 149.0, 224.0, 299.0),
    source_z=20.0,
    receiver_x=tuple(10.0 * i for i in range(31)),
    receiver_z=10.0,
    frequency=15.0,
    vmin=1.5,
    vmax=4.5,
    units="km/s",
    layout="speed-structure",
    velocity_axes="xz",
    shot_names=("1", "75", "150", "225", "300"),
    # Simulated on a 4 m internal grid (slowness-averaged model, 8th-order stencil, off-node
    # sources/receivers, 0.4 ms steps): <1% relative L2 from the 1 m run, ~25x faster.
    # coarsen=1 gives the full 1 m grid (see docs/physics.md).
    simulation=Simulation(accuracy=8, boundary="pml", boundary_width=20, coarsen=4),
)

PRESETS: dict[str, Survey] = {s.name: s for s in (OPENFWI, SPEED_STRUCTURE)}


def load_survey(name_or_path: str | os.PathLike | Survey) -> Survey:
    """Return a preset by name, or a survey read from a YAML file.

    A YAML survey may start from a preset with ``base: openfwi`` and override any field.

    Raises:
        ConfigError: unknown name, unreadable file, or a field that fails validation (the
            message names the field).
    """
    if isinstance(name_or_path, Survey):
        return name_or_path
    key = str(name_or_path)
    if key in PRESETS:
        return PRESETS[key]
    path = Path(key)
    if path.suffix not in (".yaml", ".yml") or not path.exists():
        raise ConfigError(
            f"unknown survey {key!r}: use a preset ({', '.join(PRESETS)}) or a YAML file path"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    return survey_from_dict(data, source=str(path))


def survey_from_dict(data: dict, source: str = "survey") -> Survey:
    """Build a survey from a mapping, optionally starting from ``base: <preset>``."""
    data = dict(data)
    base = data.pop("base", None)
    if base is not None:
        if base not in PRESETS:
            raise ConfigError(f"{source}: unknown base survey {base!r}; presets: {', '.join(PRESETS)}")
        merged = PRESETS[base].to_dict()
        if "simulation" in data:
            merged["simulation"] = {**merged["simulation"], **data.pop("simulation")}
        merged.update(data)
        data = merged
    try:
        return Survey.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(survey)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{source}: invalid survey: {problems}") from None


def bundled_survey_files() -> list[str]:
    """Names of the example survey YAML files shipped with seisinv."""
    folder = resources.files("seisinv") / "surveys"
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".yaml"))
