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
from seisinv.survey import Survey

# Velocities may leave the survey's nominal [vmin, vmax] by this fraction of the range before
# `seisinv check` reports them: real OpenFWI / Speed & Structure maps touch the ends, and
# resampled or smoothed maps overshoot them slightly.
RANGE_SLACK = 0.1
# The readers refuse only values far outside the range (garbage, not a slightly wider survey):
# a reader error stops a training run in the middle of an epoch, `seisinv check` does not.
READER_RANGE_SLACK = 0.5

# A velocity whose median lies above this many km/s is in m/s; below this many m/s it is in km/s.
# Rock velocities are 0.3..9 km/s, so the two unit systems never overlap around these values.
KMS_LIMIT = 20.0
MPS_LIMIT = 100.0


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
        raise DataError(f"{path}: not a readable .npy file ({exc})") from None
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
    finite = np.isfinite(velocity)
    if not finite.all():
        return [f"velocity contains {int(finite.size - finite.sum())} NaN/Inf values"]
    # The median of a regular subsample: enough to tell units apart, 50x cheaper on 300 x 1259.
    step = max(1, int(np.sqrt(velocity.size / 4096)))
    median = float(np.median(velocity[..., ::step, ::step]))
    if survey.units == "km/s" and median > KMS_LIMIT:
        return [f"velocity looks like m/s (median {median:.4g}); survey {survey.name!r} expects "
                f"km/s in {survey.vmin:g}..{survey.vmax:g}"]
    if survey.units == "m/s" and median < MPS_LIMIT:
        return [f"velocity looks like km/s (median {median:.4g}); survey {survey.name!r} expects "
                f"m/s in {survey.vmin:g}..{survey.vmax:g}"]
    slack = slack * (survey.vmax - survey.vmin)
    low, high = float(velocity.min()), float(velocity.max())
    if low < survey.vmin - slack or high > survey.vmax + slack:
        return [f"velocity range {low:.4g}..{high:.4g} {survey.units} outside the survey's "
                f"{survey.vmin:g}..{survey.vmax:g} (allowed slack {slack:.3g})"]
    return []


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
        raise DataError(f"{path}: not a readable .npy file ({exc})") from None
