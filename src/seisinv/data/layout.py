"""Find the samples under a dataset root: which layout it uses and where each sample's files are.

Three layouts are recognised (see ``docs/data.md``):

- **generated** (``seisinv generate`` output): ``ROOT/manifest.csv`` with columns
  ``id,family,seed,file,index,survey,seisinv_version`` and ``ROOT/survey.yaml``; ``file`` is a
  stacked ``data/data{k}.npy`` (sample ``index`` inside it, velocity in ``model/model{k}.npy``) or a
  per-sample folder ``<id>`` (Speed & Structure layout).
- **speed-structure**: one folder per sample id holding ``receiver_data_src_{name}.npy`` for every
  ``survey.shot_names`` and, for training data, ``vp_model.npy``.
- **openfwi**: stacked ``dataN.npy`` + ``modelN.npy`` (side by side or in ``data/`` and ``model/``
  folders) or ``seisX.npy`` + ``velX.npy``, 4-D gathers ``(n, shots, time, receivers)`` and
  velocities ``(n, 1, *disk_velocity_shape)``; single-sample ``<id>.npy`` files
  ``(shots, time, receivers)`` (Kaggle test set).

``discover`` never raises on a damaged dataset: it returns every sample it can address plus a list
of problems, so ``seisinv check`` can report them all and the readers can refuse them in one error.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from seisinv.errors import SeisinvError
from seisinv.survey import Survey, load_survey

from .format import (
    DATA_STEM,
    MANIFEST_COLUMNS,
    MODEL_STEM,
    SEIS_STEM,
    SHOT_PREFIX,
    VELOCITY_FILE,
    shot_names,
    velocity_partner,
)
from .validate import NpyHeader, header_problems, read_npy_header

FAMILY_PATTERN = re.compile(r"^(FlatVel|CurveVel|FlatFault|CurveFault|Style)_[A-Z]$", re.I)
GATHER_DTYPES = (np.float32,)
VELOCITY_DTYPES = (np.float32, np.float64)


@dataclass(frozen=True)
class FolderRef:
    """A sample stored as a folder of per-shot files (Speed & Structure layout).

    Attributes:
        shot_paths: one file per shot, in the survey's shot order.
        velocity_path: ``vp_model.npy`` or None for test samples.
    """

    id: str
    shot_paths: tuple[Path, ...]
    velocity_path: Path | None
    family: str | None = None
    synthetic: bool = False


@dataclass(frozen=True)
class StackedRef:
    """Sample ``index`` of a stacked file pair (OpenFWI layout).

    Attributes:
        data_path: gathers (n, shots, time, receivers) float32.
        model_path: velocities (n, 1, *disk_velocity_shape) or None for test data.
    """

    id: str
    data_path: Path
    index: int
    model_path: Path | None
    family: str | None = None
    synthetic: bool = False


@dataclass(frozen=True)
class SingleRef:
    """A single-sample gathers file (shots, time, receivers) without velocity (Kaggle test)."""

    id: str
    path: Path
    family: str | None = None
    synthetic: bool = False
    velocity_path: Path | None = None


SampleRef = FolderRef | StackedRef | SingleRef


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset: the file (or folder) and what was expected."""

    path: Path
    message: str
    kind: str = "error"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Discovery:
    """What ``discover`` found under one root."""

    root: Path
    layout: str
    refs: list[SampleRef] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    headers: dict[Path, NpyHeader] = field(default_factory=dict)


def family_from_path(path: Path) -> str | None:
    """The OpenFWI family named by the nearest folder like ``FlatVel_A``/``CurveFault_B``/``Style_A``."""
    for part in reversed(path.parent.parts):
        if FAMILY_PATTERN.match(part):
            return part
    return None


def discover(root: str | Path, survey: Survey) -> Discovery:
    """Find the layout and samples under ``root`` (a folder or a single ``.npy`` file)."""
    root = Path(root)
    if not root.exists():
        found = Discovery(root, "missing")
        found.problems.append(Problem(root, "does not exist"))
        return found
    if root.is_file():
        found = Discovery(root.parent, "openfwi")
        _add_npy_files(found, [root], survey)
        return found
    if (root / "manifest.csv").exists():
        return _discover_generated(root, survey)
    if _is_sample_folder(root) or any(_is_sample_folder(d) for d in _subdirs(root)):
        return _discover_folders(root, survey)
    found = Discovery(root, "openfwi")
    files = sorted(p for p in root.rglob("*.npy") if not _hidden(p, root))
    if not files:
        found.problems.append(Problem(root, "no .npy files found (expected a Speed & Structure, "
                                            "OpenFWI or seisinv generate dataset)"))
    _add_npy_files(found, files, survey)
    return found


# ---- Speed & Structure folders ---------------------------------------------------------------
def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _subdirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _is_sample_folder(folder: Path) -> bool:
    return any(folder.glob(f"{SHOT_PREFIX}*.npy"))


def _discover_folders(root: Path, survey: Survey) -> Discovery:
    found = Discovery(root, "speed-structure")
    folders = [root] if _is_sample_folder(root) else _subdirs(root)
    for folder in folders:
        if not any(folder.glob("*.npy")):
            continue
        ref = _folder_ref(found, folder, folder.name, survey, family=None, synthetic=False)
        if ref is not None:
            found.refs.append(ref)
    return found


def _folder_ref(found: Discovery, folder: Path, sample_id: str, survey: Survey,
                family: str | None, synthetic: bool) -> FolderRef | None:
    names = shot_names(survey)
    expected = {f"{SHOT_PREFIX}{name}.npy" for name in names}
    present = {p.name for p in folder.glob("*.npy")}
    missing = [n for n in (f"{SHOT_PREFIX}{name}.npy" for name in names) if n not in present]
    extra = sorted(present - expected - {VELOCITY_FILE})
    # Naming the survey points at the usual cause: folders read with another survey's shots
    # (Speed & Structure data under the default `openfwi` survey).
    if missing:
        found.problems.append(Problem(folder, f"missing shot files {', '.join(missing)} "
                                              f"(survey {survey.name!r} expects one per shot: "
                                              f"{', '.join(names)})"))
    if extra:
        found.problems.append(Problem(folder, f"unexpected files {', '.join(extra)} "
                                              f"(survey {survey.name!r} names its shots "
                                              f"{', '.join(names)})"))
    if missing:
        return None
    velocity = folder / VELOCITY_FILE
    return FolderRef(
        id=sample_id,
        shot_paths=tuple(folder / f"{SHOT_PREFIX}{name}.npy" for name in names),
        velocity_path=velocity if velocity.exists() else None,
        family=family,
        synthetic=synthetic,
    )


# ---- OpenFWI stacked and single files -------------------------------------------------------
def _header(found: Discovery, path: Path) -> NpyHeader | None:
    try:
        header = read_npy_header(path)
    except SeisinvError as exc:
        found.problems.append(Problem(path, str(exc).removeprefix(f"{path}: ")))
        return None
    found.headers[path] = header
    return header


def _add_npy_files(found: Discovery, files: list[Path], survey: Survey) -> None:
    shots, time, receivers = survey.gather_shape
    paired: set[Path] = set()
    for path in files:
        if MODEL_STEM.match(path.stem):
            continue
        header = _header(found, path)
        if header is None:
            continue
        family = family_from_path(path)
        stacked = DATA_STEM.match(path.stem) or SEIS_STEM.match(path.stem) or len(header.shape) == 4
        if not stacked:
            problems = header_problems(header, survey.gather_shape, GATHER_DTYPES, "gathers")
            found.problems += [Problem(path, p) for p in problems]
            if not problems:
                found.refs.append(SingleRef(id=file_id(path), path=path, family=family))
            continue
        problems = header_problems(header, (None, shots, time, receivers), GATHER_DTYPES,
                                   "gathers")
        model = velocity_partner(path)
        n = header.shape[0] if header.shape else 0
        if model is not None:
            paired.add(model)
            problems += _model_problems(found, model, n, survey)
        found.problems += [Problem(path, p) for p in problems]
        if not problems:
            found.refs += [StackedRef(id=f"{file_id(path)}_{i}", data_path=path, index=i,
                                      model_path=model, family=family) for i in range(n)]
    _unique_ids(found)
    for path in files:
        if MODEL_STEM.match(path.stem) and path not in paired:
            found.problems.append(Problem(path, "velocity file without a matching gathers file "
                                                "(dataN.npy / seisX.npy)"))


def file_id(path: Path) -> str:
    """The id stem of an OpenFWI-layout file: ``<family>-<stem>`` inside a family folder
    (``FlatVel_A/data/data1.npy`` -> ``FlatVel_A-data1``, so the ten Kaggle training folders side
    by side never collide and A/B stay apart), else the file stem (``test/abc.npy`` -> ``abc``).
    Stacked files append ``_<index>``. Ids never contain a path separator (they become file
    names in prediction stores)."""
    family = family_from_path(path)
    return f"{family}-{path.stem}" if family else path.stem


def _unique_ids(found: Discovery) -> None:
    """Files of the same name in different sub-folders without a family name (``a/data1.npy``,
    ``b/data1.npy``) get ids from their folder path: ``a-data1_0``, ``b-data1_0``."""
    counts: dict[str, int] = {}
    for ref in found.refs:
        counts[ref.id] = counts.get(ref.id, 0) + 1
    if all(c == 1 for c in counts.values()):
        return
    for k, ref in enumerate(found.refs):
        if counts[ref.id] == 1:
            continue
        path = ref.path if isinstance(ref, SingleRef) else ref.data_path
        try:
            parts = path.parent.relative_to(found.root).parts
        except ValueError:
            continue
        prefix = "-".join(p for p in parts if p not in ("data", "model"))
        if prefix:
            found.refs[k] = replace(ref, id=f"{prefix}-{ref.id}")


def _model_problems(found: Discovery, model: Path, n: int, survey: Survey) -> list[str]:
    """Problems of a stacked velocity file, reported against its gathers file."""
    header = _header(found, model)
    if header is None:
        return [f"its velocity file {model.name} is unreadable"]
    wanted = (None, 1, *survey.disk_velocity_shape)
    if len(header.shape) == 3:  # (n, *disk) without the channel axis is accepted too
        wanted = (None, *survey.disk_velocity_shape)
    problems = [f"{model.name}: {p}"
                for p in header_problems(header, wanted, VELOCITY_DTYPES, "velocity")]
    if header.shape and header.shape[0] != n:
        problems.append(f"holds {n} samples but {model.name} holds {header.shape[0]}")
    return problems


# ---- seisinv generate output ----------------------------------------------------------------
def _discover_generated(root: Path, survey: Survey) -> Discovery:
    found = Discovery(root, "generated")
    _check_generated_survey(found, survey)
    manifest = root / "manifest.csv"
    try:
        with open(manifest, newline="") as handle:
            rows = list(csv.DictReader(handle))
            columns = tuple(rows[0].keys()) if rows else ()
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        found.problems.append(Problem(manifest, f"unreadable manifest ({exc})"))
        return found
    missing_columns = [c for c in MANIFEST_COLUMNS if rows and c not in columns]
    if missing_columns:
        found.problems.append(Problem(manifest, f"missing columns {', '.join(missing_columns)}; "
                                                f"expected {','.join(MANIFEST_COLUMNS)}"))
        return found
    stacked: dict[Path, int] = {}  # data file -> number of samples its header holds
    for line, row in enumerate(rows, start=2):
        sample_id, family = row["id"], row["family"] or None
        target = root / row["file"]
        where = f"{manifest.name} line {line}"
        if target.is_dir() or target.name.startswith(SHOT_PREFIX):
            folder = target if target.is_dir() else target.parent
            ref = _folder_ref(found, folder, sample_id, survey, family, synthetic=True)
            if ref is not None:
                found.refs.append(ref)
            continue
        if not target.exists():
            found.problems.append(Problem(target, f"listed in {where} but missing"))
            continue
        if target not in stacked:
            stacked[target] = _generated_stack(found, target, survey)
        try:
            index = int(row["index"])
        except ValueError:
            found.problems.append(Problem(manifest, f"{where}: index {row['index']!r} is not an "
                                                    "integer"))
            continue
        if stacked[target] < 0:
            continue
        if not 0 <= index < stacked[target]:
            found.problems.append(Problem(target, f"{where} asks for sample {index} but the file "
                                                  f"holds {stacked[target]}"))
            continue
        found.refs.append(StackedRef(id=sample_id, data_path=target, index=index,
                                     model_path=velocity_partner(target), family=family,
                                     synthetic=True))
    return found


def _generated_stack(found: Discovery, path: Path, survey: Survey) -> int:
    """Sample count of a generated stacked file (-1 when it is unusable)."""
    header = _header(found, path)
    if header is None:
        return -1
    problems = header_problems(header, (None, *survey.gather_shape), GATHER_DTYPES, "gathers")
    n = header.shape[0] if header.shape else 0
    model = velocity_partner(path)
    if model is not None:
        problems += _model_problems(found, model, n, survey)
    found.problems += [Problem(path, p) for p in problems]
    return -1 if problems else n


def _check_generated_survey(found: Discovery, survey: Survey) -> None:
    path = found.root / "survey.yaml"
    if not path.exists():
        return
    try:
        stored = load_survey(path)
    except SeisinvError as exc:
        found.problems.append(Problem(path, str(exc)))
        return
    for name in ("gather_shape", "disk_velocity_shape", "units"):
        if getattr(stored, name) != getattr(survey, name):
            found.problems.append(Problem(
                path, f"dataset made for survey {stored.name!r} ({name} {getattr(stored, name)}) "
                      f"but read as {survey.name!r} ({name} {getattr(survey, name)})"))


def guess_survey(root: str | Path) -> Survey:
    """The survey a dataset most likely uses: its ``survey.yaml`` (generate output), else
    ``speed-structure`` for per-sample folders and ``openfwi`` for anything else."""
    root = Path(root)
    if root.is_dir() and (root / "survey.yaml").exists():
        return load_survey(root / "survey.yaml")
    if root.is_dir() and (_is_sample_folder(root) or any(_is_sample_folder(d)
                                                         for d in _subdirs(root))):
        return load_survey("speed-structure")
    return load_survey("openfwi")
