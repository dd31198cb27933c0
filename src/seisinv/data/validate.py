"""Checks shared by every reader and by ``seisinv check``.

Each check returns a list of problem strings (empty when all is well) instead of raising, so
``seisinv check`` can collect every problem of a dataset in one pass while the readers raise one
``DataError`` naming the file and everything wrong with it (``raise_problems``).

Header checks (shape, dtype, truncation) read only the ``.npy`` header and the file size, never the
data, so they are cheap on 1 GB stacked files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seisinv.errors import DataError
from seisinv.io import npy_failure
from seisinv.survey import CHECK_SLACK, VELOCITY_SLACK, Survey

# The thresholds live on the survey (``Survey.velocity_problems``), the one velocity check;
# the names stay importable from here.
RANGE_SLACK = CHECK_SLACK
READER_RANGE_SLACK = VELOCITY_SLACK


@dataclass(frozen=True)
class NpyHeader:
    """What a ``.npy`` header says, plus whether the file holds all the bytes it promises.

    Attributes:
        path: the file.
        shape: array shape from the header.
        dtype: array dtype from the header.
        fortran_order: True for column-major files (readers copy these into C order).
        data_offset: byte offset of the array data.
        file_size: size of the file in bytes.
    """

    path: Path
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    data_offset: int
    file_size: int

    @property
    def expected_size(self) -> int:
        """Bytes the file must have to hold the whole array."""
        return self.data_offset + int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    @property
    def truncated(self) -> bool:
        return self.file_size < self.expected_size


def read_npy_header(path: str | os.PathLike) -> NpyHeader:
    """Read a ``.npy`` header without reading its data.

    Raises:
        DataError: the file is missing, is not a ``.npy`` file, or its header is damaged.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            offset = handle.tell()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise DataError(f"{path}: {npy_failure(path, exc)}") from None
    return NpyHeader(path, tuple(shape), np.dtype(dtype), bool(fortran), offset,
                     path.stat().st_size)


def header_problems(
    header: NpyHeader,
    shape: tuple[int | None, ...],
    dtypes: tuple[type, ...],
    what: str,
) -> list[str]:
    """Problems of one file's header: wrong shape (``None`` matches any size), dtype, truncation.

    Args:
        header: from ``read_npy_header``.
        shape: expected shape; ``None`` entries match any length (e.g. the sample count).
        dtypes: accepted dtypes.
        what: name of the array in messages ("gathers", "velocity").
    """
    problems = []
    if len(header.shape) != len(shape) or any(
        want is not None and got != want for got, want in zip(header.shape, shape, strict=False)
    ):
        wanted = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
        problems.append(f"{what} shape {header.shape}, expected {wanted}")
    if header.dtype.type not in dtypes:
        names = " or ".join(np.dtype(d).name for d in dtypes)
        problems.append(f"{what} dtype {header.dtype}, expected {names}")
    if header.truncated:
        problems.append(
            f"truncated: {header.file_size} bytes, the header promises {header.expected_size}"
        )
    return problems


def gathers_value_problems(gathers: np.ndarray) -> list[str]:
    """NaN or Inf in gathers (any shape)."""
    finite = np.isfinite(gathers)
    if finite.all():
        return []
    n_nan = int(np.isnan(gathers).sum())
    n_inf = int(finite.size - finite.sum()) - n_nan
    return [f"gathers contain {n_nan} NaN and {n_inf} Inf values"]


def velocity_value_problems(
    velocity: np.ndarray, survey: Survey, slack: float = RANGE_SLACK
) -> list[str]:
    """NaN/Inf, wrong units, or values outside the survey's range widened by ``slack``.

    Args:
        velocity: any shape, in the units the survey expects (``survey.units``).
        slack: allowed excursion beyond ``[vmin, vmax]`` as a fraction of ``vmax - vmin``.
    """
    return survey.velocity_problems(velocity, slack)


def raise_problems(path: str | os.PathLike, problems: list[str]) -> None:
    """Raise one ``DataError`` naming ``path`` and every problem found, if there are any."""
    if problems:
        raise DataError(f"{path}: " + "; ".join(problems))


def read_into(path: str | os.PathLike, out: np.ndarray) -> bool:
    """Read a ``.npy`` file straight into ``out`` when its header matches ``out`` exactly.

    Skips the temporary array (and the copy into a stacked array) of ``np.load``. Returns False,
    having possibly written part of ``out``, when the shape, dtype, order or size differ: the
    caller then loads the file the slow way to report what is wrong.
    """
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version != (1, 0):
                return False
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            if tuple(shape) != out.shape or fortran or np.dtype(dtype) != out.dtype:
                return False
            return handle.readinto(memoryview(out).cast("B")) == out.nbytes
    except (ValueError, OSError, EOFError, SyntaxError):
        return False


def load_npy_checked(path: str | os.PathLike, mmap: bool = False) -> np.ndarray:
    """``np.load`` (no pickle; memory-mapped when ``mmap``) turning failures into ``DataError``.

    A truncated file is reported as such, with its size and the size its header promises.
    """
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (ValueError, OSError, EOFError) as exc:
        header = read_npy_header(path)
        raise_problems(path, header_problems(header, header.shape, (header.dtype.type,), "array"))
        raise DataError(f"{path}: {npy_failure(path, exc)}") from None
