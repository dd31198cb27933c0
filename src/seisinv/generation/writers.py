"""Atomic writers for generated samples: stacked OpenFWI files and Speed & Structure folders.

A file is filled under a temporary name beside its target and renamed into place only once it is
complete; a sample folder is built under a temporary name and renamed as a whole. A killed job
therefore leaves either finished files/folders or temporary ones, which ``remove_stale`` deletes
before the work is redone.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from seisinv.data.format import (
    SHOT_PREFIX,
    TMP_MARK,
    VELOCITY_FILE,
    shot_file_names,
    write_sample_folder,
)
from seisinv.io import atomic_path, preallocate, save_npy
from seisinv.survey import Survey

# The sample-folder format and its writer live in seisinv.data.format (shared with the readers).
__all__ = ["SHOT_PREFIX", "VELOCITY_FILE", "add_gathers_to_folder", "atomic_memmap",
           "folder_complete", "remove_stale", "shot_file_names", "write_sample_folder"]
_TMP_MARK = TMP_MARK


@contextlib.contextmanager
def atomic_memmap(path: Path, shape: tuple[int, ...], dtype=np.float32) -> Iterator[np.memmap]:
    """A writable .npy memmap under a temporary name; on clean exit flushed, fsynced and renamed
    onto ``path``; on error deleted. Lets a 500-sample chunk be filled batch by batch without
    holding it in memory."""
    with atomic_path(path) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        # Reserve the blocks first: a full disk is then an OSError here (the temporary file is
        # deleted) instead of a SIGBUS when a write through the map finds no block.
        preallocate(tmp)
        yield array
        array.flush()
        del array


def folder_complete(folder: Path, survey: Survey, with_velocity: bool = True) -> bool:
    """True when ``folder`` holds every shot file (and ``vp_model.npy`` if asked)."""
    names = shot_file_names(survey) + ([VELOCITY_FILE] if with_velocity else [])
    return folder.is_dir() and all((folder / name).exists() for name in names)


def add_gathers_to_folder(folder: Path, gathers: np.ndarray, survey: Survey) -> None:
    """Write the shot files of an existing sample folder (each file atomically), keeping its
    other files; (shots, nt, receivers) float32 -> ``receiver_data_src_{name}.npy``."""
    for name, shot in zip(shot_file_names(survey), gathers, strict=True):
        save_npy(folder / name, np.ascontiguousarray(shot, dtype=np.float32))


def remove_stale(folder: Path, name: str) -> None:
    """Delete temporaries a killed writer left for target ``name`` in ``folder``."""
    if not folder.is_dir():
        return
    for leftover in folder.glob(f".{name}.*{_TMP_MARK}"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
