"""Atomic writers for generated samples: stacked OpenFWI files and Speed & Structure folders.

A file is filled under a temporary name beside its target and renamed into place only once it is
complete; a sample folder is built under a temporary name and renamed as a whole. A killed job
therefore leaves either finished files/folders or temporary ones, which ``remove_stale`` deletes
before the work is redone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from seisinv.io import atomic_path, preallocate, publish_mode, save_npy
from seisinv.survey import Survey

SHOT_PREFIX = "receiver_data_src_"
VELOCITY_FILE = "vp_model.npy"
_TMP_MARK = ".tmp"


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


def shot_file_names(survey: Survey) -> list[str]:
    """Per-shot file names of a sample folder: ``receiver_data_src_{name}.npy`` per shot."""
    names = survey.shot_names or tuple(str(i + 1) for i in range(survey.n_shots))
    return [f"{SHOT_PREFIX}{name}.npy" for name in names]


def folder_complete(folder: Path, survey: Survey, with_velocity: bool = True) -> bool:
    """True when ``folder`` holds every shot file (and ``vp_model.npy`` if asked)."""
    names = shot_file_names(survey) + ([VELOCITY_FILE] if with_velocity else [])
    return folder.is_dir() and all((folder / name).exists() for name in names)


def write_sample_folder(
    folder: Path, gathers: np.ndarray, survey: Survey, velocity: np.ndarray | None = None
) -> None:
    """Write one Speed & Structure-style sample folder atomically.

    Args:
        folder: the target folder (``OUT/<id>``); replaced if it exists.
        gathers: (shots, nt, receivers) float32; shot ``s`` goes to ``receiver_data_src_{name}.npy``
            as (nt, receivers) float32.
        survey: gives shot names and the on-disk velocity axis order.
        velocity: (nz, nx) in survey units, depth first, written as ``vp_model.npy`` in the
            survey's on-disk order (``disk_velocity_shape``) as float64, like the challenge data;
            None writes no velocity file.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=_TMP_MARK, dir=folder.parent))
    publish_mode(tmp, directory=True)
    try:
        for name, shot in zip(shot_file_names(survey), gathers, strict=True):
            save_npy(tmp / name, np.ascontiguousarray(shot, dtype=np.float32))
        if velocity is not None:
            disk = survey.velocity_to_disk(np.asarray(velocity))
            save_npy(tmp / VELOCITY_FILE, np.ascontiguousarray(disk, dtype=np.float64))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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
