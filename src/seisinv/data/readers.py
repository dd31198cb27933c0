"""Read datasets of either challenge (and ``seisinv generate`` output) as ``Sample`` records.

``open_dataset(paths, survey)`` finds the layout of each root (``seisinv.data.layout``), refuses a
damaged dataset with one ``DataError`` listing what is wrong, and returns a ``SampleSource``: a
sequence whose ``[i]`` reads one sample from disk. Stacked OpenFWI files are memory-mapped, so
reading one sample touches only its own bytes of a 1 GB file.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seisinv.errors import DataError
from seisinv.survey import Survey, load_survey

from .layout import (
    GATHER_DTYPES,
    VELOCITY_DTYPES,
    FolderRef,
    SampleRef,
    SingleRef,
    StackedRef,
    discover,
    guess_survey,
)
from .sample import Sample
from .validate import (
    READER_RANGE_SLACK,
    gathers_value_problems,
    load_npy_checked,
    raise_problems,
    read_into,
    velocity_value_problems,
)

# How many problems a reader's DataError lists before pointing at `seisinv check`.
MAX_LISTED_PROBLEMS = 5
# Memory maps kept open per process. Each holds a file descriptor (mmap duplicates it), and the
# full OpenFWI set has ~1,000 stacked files: an unbounded cache would hit the usual 1,024 limit.
MAX_OPEN_MAPS = 64


class SampleSource(Sequence):
    """The samples of one or more dataset roots, read on demand.

    ``len(source)``, ``source.ids``, ``source[i] -> Sample``. Indexing reads and validates one
    sample (shape, dtype, finite values, velocity units and range), raising ``DataError`` naming the
    file. Picklable (memory maps are reopened in each DataLoader worker).

    Attributes:
        survey: the survey the samples belong to.
        refs: where each sample's files are (``seisinv.data.layout``).
    """

    def __init__(self, refs: Sequence[SampleRef], survey: Survey) -> None:
        self.survey = survey
        self.refs = list(refs)
        self._ids = [ref.id for ref in self.refs]  # built once: callers index it in loops
        self._positions = {sample_id: i for i, sample_id in enumerate(self._ids)}
        self._maps: OrderedDict[Path, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return SampleSource(self.refs[i], self.survey)
        return self._read(self.refs[i])

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_maps"] = OrderedDict()  # memory maps are per process
        return state

    @property
    def ids(self) -> list[str]:
        """Sample ids, in index order (a shared list: do not modify it)."""
        return self._ids

    @property
    def families(self) -> list[str | None]:
        """Velocity family of each sample (None when unknown), in index order."""
        return [ref.family for ref in self.refs]

    @property
    def synthetic(self) -> list[bool]:
        """Whether each sample was made by ``seisinv generate``, in index order."""
        return [ref.synthetic for ref in self.refs]

    @property
    def velocity_known(self) -> list[bool]:
        """Whether each sample has a velocity file, in index order."""
        return [_velocity_path(ref) is not None for ref in self.refs]

    @property
    def has_velocity(self) -> bool:
        """True when every sample has a velocity (a training set); False for test sets."""
        return all(self.velocity_known)

    def index_of(self, sample_id: str) -> int:
        """Position of a sample id; raises ``DataError`` when absent."""
        try:
            return self._positions[sample_id]
        except KeyError:
            raise DataError(f"sample {sample_id!r} is not in this dataset") from None

    def subset(self, indices: Sequence[int]) -> SampleSource:
        """A source with only the samples at ``indices`` (in that order)."""
        return SampleSource([self.refs[i] for i in indices], self.survey)

    # ---- reading ------------------------------------------------------------------------
    def _map(self, path: Path) -> np.ndarray:
        """The memory map of a stacked file (least recently used ones are closed)."""
        if path in self._maps:
            self._maps.move_to_end(path)
        else:
            self._maps[path] = load_npy_checked(path, mmap=True)
            while len(self._maps) > MAX_OPEN_MAPS:
                self._maps.popitem(last=False)
        return self._maps[path]

    def _read(self, ref: SampleRef) -> Sample:
        if isinstance(ref, FolderRef):
            gathers = _read_shots(ref.shot_paths, self.survey)
            velocity = None
            if ref.velocity_path is not None:
                velocity = _check_velocity(load_npy_checked(ref.velocity_path),
                                           ref.velocity_path, self.survey)
        elif isinstance(ref, StackedRef):
            gathers = np.array(self._map(ref.data_path)[ref.index], dtype=np.float32)
            velocity = None
            if ref.model_path is not None:
                disk = self._map(ref.model_path)[ref.index]
                velocity = _check_velocity(disk[0] if disk.ndim == 3 else disk,
                                           f"{ref.model_path}[{ref.index}]", self.survey)
            where = f"{ref.data_path}[{ref.index}]"
            raise_problems(where, gathers_value_problems(gathers))
        else:
            gathers = _load_gathers_file(ref.path, self.survey)
            velocity = None
        return Sample(id=ref.id, gathers=gathers, velocity=velocity, family=ref.family,
                      survey=self.survey.name, synthetic=ref.synthetic)


def _velocity_path(ref: SampleRef) -> Path | None:
    return ref.model_path if isinstance(ref, StackedRef) else ref.velocity_path


def _read_shots(paths: Sequence[Path], survey: Survey) -> np.ndarray:
    """The shots of a folder sample, read straight into one (shots, time, receivers) array."""
    gathers = np.empty(survey.gather_shape, dtype=np.float32)
    for shot, path in enumerate(paths):
        if not read_into(path, gathers[shot]):
            gathers[shot] = _load_trace_file(path, survey)  # raises, naming what is wrong
    if gathers_value_problems(gathers):
        for shot, path in enumerate(paths):
            raise_problems(path, gathers_value_problems(gathers[shot]))
    return gathers


def _load_trace_file(path: Path, survey: Survey) -> np.ndarray:
    """One shot of a folder sample: (time, receivers) float32."""
    array = load_npy_checked(path)
    expected = survey.gather_shape[1:]
    problems = []
    if array.shape != expected:
        problems.append(f"shot shape {array.shape}, expected {expected} (time, receivers)")
    if array.dtype.type not in GATHER_DTYPES:
        problems.append(f"dtype {array.dtype}, expected float32")
    raise_problems(path, problems or gathers_value_problems(array))
    return array


def _load_gathers_file(path: Path, survey: Survey) -> np.ndarray:
    """A single-sample gathers file: (shots, time, receivers) float32."""
    array = load_npy_checked(path)
    problems = []
    if array.shape != survey.gather_shape:
        problems.append(f"gathers shape {array.shape}, expected {survey.gather_shape} "
                        "(shots, time, receivers)")
    if array.dtype.type not in GATHER_DTYPES:
        problems.append(f"dtype {array.dtype}, expected float32")
    raise_problems(path, problems or gathers_value_problems(array))
    return array


def _check_velocity(disk: np.ndarray, where, survey: Survey) -> np.ndarray:
    """On-disk velocity (*disk_velocity_shape) -> internal (nz, nx) float32, depth first."""
    problems = []
    if disk.shape != survey.disk_velocity_shape:
        axes = "(nz, nx)" if survey.velocity_axes == "zx" else "(nx, nz) horizontal first"
        problems.append(f"velocity shape {disk.shape}, expected {survey.disk_velocity_shape} "
                        f"{axes}")
    if disk.dtype.type not in VELOCITY_DTYPES:
        problems.append(f"velocity dtype {disk.dtype}, expected float32 or float64")
    raise_problems(where, problems)
    # A copy: never hand out a view of a memory map (read-only, and it pins the file open).
    velocity = np.array(survey.velocity_from_disk(disk), dtype=np.float32, order="C")
    raise_problems(where, velocity_value_problems(velocity, survey, slack=READER_RANGE_SLACK))
    return velocity


def open_dataset(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    survey: Survey | str | None = None,
    *,
    require_velocity: bool = False,
) -> SampleSource:
    """Open one or more dataset roots (any supported layout) as one ``SampleSource``.

    Args:
        paths: a folder (Speed & Structure, OpenFWI, Kaggle test, ``seisinv generate`` output), a
            single ``.npy`` file, or a list of them; their samples are concatenated in order.
        survey: a ``Survey`` or preset name / YAML path; None guesses it from the first root
            (its ``survey.yaml`` for ``seisinv generate`` output, else ``speed-structure`` for
            per-sample folders and ``openfwi`` otherwise; see ``layout.guess_survey``).
        require_velocity: refuse samples without a velocity (training sets).

    Returns:
        A ``SampleSource``; ``source[i]`` is a ``Sample`` with gathers (shots, time, receivers)
        float32 and velocity (nz, nx) float32 depth first in survey units (or None).

    Raises:
        DataError: missing/extra/mismatched files, wrong shapes or dtypes, truncated files,
            duplicate ids, missing velocities when required. One error lists up to five problems;
            ``seisinv check`` lists them all.
    """
    roots = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not roots:
        raise DataError("open_dataset: no dataset path given")
    survey = guess_survey(roots[0]) if survey is None else load_survey(survey)
    refs: list[SampleRef] = []
    problems = []
    for root in roots:
        found = discover(root, survey)
        problems += found.problems
        refs += found.refs
    seen: dict[str, SampleRef] = {}
    for ref in refs:
        if ref.id in seen:
            problems.append(f"duplicate sample id {ref.id!r} ({_where(seen[ref.id])} and "
                            f"{_where(ref)})")
        seen[ref.id] = ref
    if require_velocity:
        without = [ref for ref in refs if _velocity_path(ref) is None]
        if without:
            problems.append(f"{_where(without[0])}: no velocity for sample {without[0].id!r} "
                            f"({len(without)} samples lack one; a training set needs them)")
    if problems:
        listed = "; ".join(str(p) for p in problems[:MAX_LISTED_PROBLEMS])
        more = len(problems) - MAX_LISTED_PROBLEMS
        tail = f"; and {more} more" if more > 0 else ""
        raise DataError(f"{listed}{tail} (run `seisinv check` to list every problem)")
    if not refs:
        raise DataError(f"{', '.join(str(r) for r in roots)}: no samples found")
    return SampleSource(refs, survey)


def _where(ref: SampleRef) -> str:
    if isinstance(ref, FolderRef):
        return str(ref.shot_paths[0].parent)
    if isinstance(ref, StackedRef):
        return f"{ref.data_path}[{ref.index}]"
    assert isinstance(ref, SingleRef)
    return str(ref.path)
