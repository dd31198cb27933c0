"""Validate whole datasets in one pass, collecting every problem (``seisinv check``).

Structure is always checked in full: missing / extra shot files, unpaired velocity files, sample
counts of paired files, ``.npy`` headers (shape, dtype) and truncation, duplicate ids. Values
(NaN/Inf in gathers and velocities, velocity units and range) are checked on every per-sample file
(Speed & Structure folders, Kaggle test files) and on up to ``value_samples`` samples, evenly
spaced, of each stacked file: reading every sample of a 1 GB OpenFWI file is what training does,
not what a check should cost.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seisinv.survey import Survey, load_survey

from .layout import (
    GATHER_DTYPES,
    VELOCITY_DTYPES,
    Discovery,
    FolderRef,
    Problem,
    SampleRef,
    SingleRef,
    StackedRef,
    discover,
)
from .validate import (
    gathers_value_problems,
    header_problems,
    read_npy_header,
    velocity_value_problems,
)

# Problem categories for the summary table, matched against the problem text in this order.
CATEGORIES = (
    ("truncated", "truncated"),
    ("missing shot", "missing files"),
    ("missing", "missing files"),
    ("does not exist", "missing files"),
    ("no .npy", "missing files"),
    ("unexpected files", "extra files"),
    ("without a matching", "unpaired files"),
    ("holds", "sample counts"),
    ("shape", "shape"),
    ("dtype", "dtype"),
    ("NaN", "NaN/Inf"),
    ("looks like", "units"),
    ("range", "value range"),
    ("duplicate", "duplicate ids"),
)


def category(problem: Problem) -> str:
    """The summary-table category of a problem ("shape", "NaN/Inf", "units", ...)."""
    for needle, name in CATEGORIES:
        if needle in problem.message:
            return name
    return "unreadable"


@dataclass
class RootReport:
    """What ``check_dataset`` found under one root."""

    root: Path
    layout: str
    samples: int = 0
    value_checked: int = 0


@dataclass
class CheckReport:
    """All problems of the checked roots, plus per-root counts for the summary table."""

    survey: str
    roots: list[RootReport] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> Counter:
        """Number of problems per category."""
        return Counter(category(p) for p in self.problems)


def check_dataset(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    survey: Survey | str,
    value_samples: int = 16,
    progress: bool = False,
) -> CheckReport:
    """Check one or more dataset roots against ``survey`` without stopping at the first problem.

    Args:
        paths: dataset roots (any layout ``open_dataset`` reads) or single ``.npy`` files.
        survey: ``Survey`` or preset name / YAML path.
        value_samples: samples per stacked file whose values are read (see module docstring).
        progress: show the standard progress bar over the samples.

    Returns:
        A ``CheckReport``; ``report.ok`` is False when anything is wrong.
    """
    survey = load_survey(survey)
    roots = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    report = CheckReport(survey=survey.name)
    owners: dict[str, SampleRef] = {}
    discoveries = [discover(root, survey) for root in roots]
    for root, found in zip(roots, discoveries, strict=True):
        report.roots.append(RootReport(Path(root), found.layout, samples=len(found.refs)))
        report.problems += found.problems
        for ref in found.refs:
            if ref.id in owners:
                report.problems.append(Problem(_path(ref), f"duplicate sample id {ref.id!r} "
                                                           f"(also in {_path(owners[ref.id])})"))
            owners.setdefault(ref.id, ref)
    with _progress(progress, sum(len(f.refs) for f in discoveries)) as advance:
        for summary, found in zip(report.roots, discoveries, strict=True):
            problems, checked = _check_values(found, survey, value_samples, advance)
            report.problems += problems
            summary.value_checked = checked
    return report


@contextlib.contextmanager
def _progress(show: bool, total: int) -> Iterator[Callable[[int], None]]:
    """``advance(n)`` for the standard progress bar, or a no-op when not shown."""
    if not show:
        yield lambda n: None
        return
    from seisinv.runtime import progress_bar  # imports torch: only when a bar is wanted

    with progress_bar() as bar:
        task = bar.add_task("checking", total=total)
        yield lambda n: bar.advance(task, n)


def _path(ref: SampleRef) -> Path:
    if isinstance(ref, FolderRef):
        return ref.shot_paths[0].parent
    return ref.data_path if isinstance(ref, StackedRef) else ref.path


def _check_values(found: Discovery, survey: Survey, value_samples: int,
                  advance: Callable[[int], None]):
    """Header and value problems of every sample file, bounded for stacked files."""
    problems: list[Problem] = []
    checked = 0
    by_file: dict[Path, list[StackedRef]] = {}
    for ref in found.refs:
        if isinstance(ref, FolderRef):
            problems += _check_folder(ref, survey)
            checked += 1
            advance(1)
        elif isinstance(ref, SingleRef):
            problems += _check_file(ref.path, survey.gather_shape, survey, gathers=True)
            checked += 1
            advance(1)
        else:
            by_file.setdefault(ref.data_path, []).append(ref)
    for data_path, refs in by_file.items():
        picks = np.unique(np.linspace(0, len(refs) - 1, min(value_samples, len(refs))).round())
        data = np.load(data_path, mmap_mode="r", allow_pickle=False)
        model = (np.load(refs[0].model_path, mmap_mode="r", allow_pickle=False)
                 if refs[0].model_path is not None else None)
        for pick in picks.astype(int):
            ref = refs[pick]
            problems += [Problem(data_path, f"sample {ref.index}: {p}")
                         for p in gathers_value_problems(np.asarray(data[ref.index]))]
            if model is not None:
                disk = np.asarray(model[ref.index])
                disk = disk[0] if disk.ndim == 3 else disk
                velocity = survey.velocity_from_disk(disk)
                problems += [Problem(ref.model_path, f"sample {ref.index}: {p}")
                             for p in velocity_value_problems(velocity, survey)]
            checked += 1
        advance(len(refs))
    return problems, checked


def _check_file(path: Path, shape, survey: Survey, gathers: bool) -> list[Problem]:
    """Header, then values, of one per-sample file (gathers or on-disk velocity)."""
    try:
        header = read_npy_header(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one reported problem
        return [Problem(path, str(exc).removeprefix(f"{path}: "))]
    what, dtypes = ("gathers", GATHER_DTYPES) if gathers else ("velocity", VELOCITY_DTYPES)
    found = header_problems(header, shape, dtypes, what)
    if found:
        return [Problem(path, p) for p in found]
    array = np.load(path, allow_pickle=False)
    if gathers:
        return [Problem(path, p) for p in gathers_value_problems(array)]
    return [Problem(path, p)
            for p in velocity_value_problems(survey.velocity_from_disk(array), survey)]


def _check_folder(ref: FolderRef, survey: Survey) -> list[Problem]:
    problems = []
    for path in ref.shot_paths:
        problems += _check_file(path, survey.gather_shape[1:], survey, gathers=True)
    if ref.velocity_path is not None:
        problems += _check_file(ref.velocity_path, survey.disk_velocity_shape, survey,
                                gathers=False)
    return problems
