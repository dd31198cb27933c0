"""Atomic file writes: every output goes to a temporary file in the same folder, then is renamed.

A reader therefore sees either the old file or the complete new one, never a half-written file,
even if the process is killed mid-write.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import yaml


@functools.cache
def _umask() -> int:
    # os.umask can only be read by setting it; done once, before any worker threads exist.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish_mode(path: str | os.PathLike, directory: bool = False) -> None:
    """Give a temporary file or folder (created 0600 / 0700 by ``tempfile``) the permissions a
    normal one would get (0666 / 0777 minus the umask), so shared outputs stay readable."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary file path beside ``path`` (``.<name>.<random>.tmp``) to be filled by the caller;
    on clean exit the file is fsynced and renamed onto ``path``, on error deleted."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    publish_mode(tmp)
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on clean exit fsync it and rename it onto ``path``."""
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        yield handle


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as a .npy file atomically (no pickle)."""
    with atomic_open(path, "wb") as handle:
        np.save(handle, np.asarray(array), allow_pickle=False)


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray], compressed: bool = False) -> None:
    """Write a dict of arrays as an .npz file atomically (no pickle)."""
    saver = np.savez_compressed if compressed else np.savez
    with atomic_open(path, "wb") as handle:
        saver(handle, **arrays)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write text (UTF-8) atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON (indented, sorted keys) atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_yaml(path: str | os.PathLike, obj: Any) -> None:
    """Write YAML (block style, key order kept) atomically."""
    write_text(path, yaml.safe_dump(obj, sort_keys=False))


def load_npy(path: str | os.PathLike, mmap: bool = False) -> np.ndarray:
    """Read a .npy file without pickle; ``mmap=True`` maps it instead of reading it."""
    from seisinv.errors import DataError

    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: {npy_failure(path, exc)}") from None


NPY_MAGIC = b"\x93NUMPY"


def npy_failure(path: str | os.PathLike, exc: BaseException) -> str:
    """Why ``np.load(path, allow_pickle=False)`` failed, in words a user can act on.

    numpy reports any file without the ``.npy`` magic (a text or CSV file renamed ``.npy``) as
    "pickled (object) data ... allow_pickle=", which is wrong and points toward unsafe loading.
    """
    try:
        with open(path, "rb") as handle:
            start = handle.read(len(NPY_MAGIC))
    except OSError as err:
        return f"cannot read ({err.strerror or err})"
    if not start:
        return "empty file (0 bytes), not a .npy array"
    if start != NPY_MAGIC:
        return (f"not a .npy file: it starts with {start!r}, not the .npy signature "
                f"{NPY_MAGIC!r} (a text or other file renamed .npy?)")
    if "pickled" in str(exc) or "allow_pickle" in str(exc):
        return ("holds Python objects (dtype object), which seisinv never loads; save a numeric "
                "array instead")
    return f"not a readable .npy file ({exc})"


def is_disk_full(exc: BaseException) -> bool:
    """True for the OS errors of a full disk or an exhausted quota (numpy reports a short write
    to a full disk without an errno: "N requested and M written")."""
    if not isinstance(exc, OSError):
        return False
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return exc.errno is None and "requested and" in str(exc) and "written" in str(exc)


def preallocate(path: str | os.PathLike, size: int | None = None) -> None:
    """Reserve the disk blocks of ``path`` up to ``size`` bytes (default: its current size).

    A memory-mapped file is sparse until written; if the disk fills up meanwhile, writing
    through the map kills the process with SIGBUS. Reserving the blocks first turns that into an
    ``OSError(ENOSPC)`` here, before any sample is computed.

    Raises:
        OSError: ``errno.ENOSPC`` when the disk cannot hold ``size`` bytes.
    """
    size = os.stat(path).st_size if size is None else size
    if size <= 0:
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
        # No fallocate on this file system: at least refuse when the space is plainly missing.
        allocated = os.fstat(fd).st_blocks * 512
        if shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free < size - allocated:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
    finally:
        os.close(fd)


def disk_full_error(
    exc: OSError, target: str | os.PathLike, done: int, total: int, argument: str = "out"
):
    """The one-line error of a write that failed for ``exc`` while ``done`` of ``total`` samples
    were complete (an ``seisinv.outdir.OutputError`` naming ``argument``)."""
    from seisinv.outdir import OutputError

    if is_disk_full(exc):
        what = f"disk full while writing {target}"
    else:
        what = f"{argument} {target}: cannot write {exc.filename or target} ({exc.strerror or exc})"
    return OutputError(
        f"{what}; {done} of {total} samples are complete and will not be redone (rerun the same "
        "command to finish)", argument)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
