"""Read velocity maps a user already has, for ``seisinv simulate`` and ``generate --mix-from``.

Accepted inputs (all in the survey's units and on-disk axis order):

- a ``.npy`` file of shape ``(n, *disk_shape)``, ``(n, 1, *disk_shape)`` or one ``disk_shape`` map;
- a folder of such files (e.g. an OpenFWI ``model/`` folder, or a dataset root whose ``model/``
  sub-folder holds them), read in natural name order (``model2`` before ``model10``);
- a Speed & Structure sample folder (holding ``vp_model.npy``) or a folder of them;
- a Kaggle GWI / OpenFWI tree of family folders (``FlatVel_A/model/model1.npy``,
  ``FlatFault_A/vel2_1_0.npy``): every ``model/*.npy`` and ``vel*.npy`` below the root, ids
  prefixed with their folder (``FlatVel_A-model1_0``) since file names repeat across families.

Maps are read on demand (memory-mapped), so a pool of thousands of 1259 x 300 maps costs no RAM.
The full dataset readers (gathers + velocity) live in ``seisinv.data``; this loader only needs
velocity maps, which ``seisinv.data`` readers do not accept without gathers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seisinv.data.format import VELOCITY_FILE
from seisinv.errors import DataError
from seisinv.io import load_npy
from seisinv.survey import Survey


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def check_velocity_values(values: np.ndarray, survey: Survey, where: str) -> None:
    """Raise DataError naming ``where`` if ``values`` are empty, non-finite, non-positive, in the
    wrong units or far outside the survey's range: ``Survey.check_velocity``, the same check the
    readers apply, so a map ``simulate`` accepts is a map the readers accept."""
    survey.check_velocity(values, where)


@dataclass(frozen=True)
class _Entry:
    id: str
    path: Path
    index: int | None  # row in a stacked file; None for a single map (folder or 2-D file)


class VelocityMaps:
    """A read-on-demand sequence of velocity maps: ``maps[i]`` -> (nz, nx) float32, depth first,
    survey units; ``maps.ids[i]`` is its id (``<file stem>_<index>`` or the folder name).

    Args:
        path: a .npy file, a folder of them, or Speed & Structure sample folder(s).
        survey: gives the expected on-disk shape and units.

    Raises:
        DataError: nothing found, a file of the wrong shape, or values in the wrong units (the
            message names the file).
    """

    def __init__(self, path: str | Path, survey: Survey) -> None:
        self.root = Path(path)
        self.survey = survey
        self.is_folders = False
        self._entries: list[_Entry] = []
        self._arrays: dict[Path, np.ndarray] = {}
        if not self.root.exists():
            raise DataError(f"{self.root}: no such file or folder of velocity maps")
        if self.root.is_file():
            self._add_file(self.root)
        elif (self.root / VELOCITY_FILE).exists():
            self._add_folder(self.root)
        else:
            folders = sorted(
                (d for d in self.root.iterdir() if (d / VELOCITY_FILE).exists()), key=_natural_key
            )
            if folders:
                for folder in folders:
                    self._add_folder(folder)
            else:
                files = self._npy_files(self.root)
                for file in files:
                    self._add_file(file, self._prefix(file))
        if not self._entries:
            raise DataError(f"{self.root}: found no velocity maps")

    # ---- discovery ---------------------------------------------------------------------
    @staticmethod
    def _npy_files(root: Path) -> list[Path]:
        """``.npy`` velocity files in ``root``, or in ``root/model`` for an OpenFWI dataset root
        (whose ``data/`` holds gathers and ``model/`` the maps)."""
        folder = root / "model" if (root / "model").is_dir() else root
        files = sorted(folder.glob("*.npy"), key=_natural_key)
        if not files:  # a tree of family folders (Kaggle GWI training set)
            files = sorted((*root.rglob("model/*.npy"), *root.rglob("vel*.npy")),
                           key=lambda p: [*p.relative_to(root).parent.parts, *_natural_key(p)])
        if not files:
            raise DataError(
                f"{root}: found no .npy velocity files (nor a model/ folder or vp_model.npy "
                "sample folders)"
            )
        return files

    def _add_folder(self, folder: Path) -> None:
        file = folder / VELOCITY_FILE
        shape = self._open(file).shape
        if tuple(shape) != self.survey.disk_velocity_shape:
            raise DataError(
                f"{file}: velocity shape {tuple(shape)}, expected "
                f"{self.survey.disk_velocity_shape} for survey {self.survey.name!r}"
            )
        self.is_folders = True
        self._entries.append(_Entry(folder.name, file, None))

    def _prefix(self, file: Path) -> str:
        """``<folder>-`` for a file deep in a tree (its family folder, ``model/`` left out), so
        ids stay unique where file names repeat; ``""`` at the root or in ``root/model``."""
        parts = [p for p in file.relative_to(self.root).parent.parts if p != "model"]
        return "-".join(parts) + "-" if parts else ""

    def _add_file(self, file: Path, prefix: str = "") -> None:
        if file.suffix != ".npy":
            raise DataError(f"{file}: expected a .npy file of velocity maps")
        array = self._open(file)
        disk = self.survey.disk_velocity_shape
        shape = tuple(array.shape)
        if shape == disk:
            self._entries.append(_Entry(prefix + file.stem, file, None))
            return
        if len(shape) == 4 and shape[1] == 1 and shape[2:] == disk:
            n = shape[0]
        elif len(shape) == 3 and shape[1:] == disk:
            n = shape[0]
        else:
            raise DataError(
                f"{file}: velocity shape {shape}, expected (n, {disk[0]}, {disk[1]}) or "
                f"(n, 1, {disk[0]}, {disk[1]}) for survey {self.survey.name!r} "
                f"(axes {'depth, x' if self.survey.velocity_axes == 'zx' else 'x, depth'})"
            )
        self._entries.extend(_Entry(f"{prefix}{file.stem}_{i}", file, i) for i in range(n))

    def _open(self, file: Path) -> np.ndarray:
        if file not in self._arrays:
            array = load_npy(file, mmap=True)
            if not np.issubdtype(array.dtype, np.floating):
                raise DataError(f"{file}: velocity dtype {array.dtype}, expected float32/float64")
            self._arrays[file] = array
        return self._arrays[file]

    # ---- access ------------------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        return [e.id for e in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, i: int) -> np.ndarray:
        """Map ``i`` as (nz, nx) float32, depth first, survey units (values checked)."""
        entry = self._entries[i]
        array = self._open(entry.path)
        disk = array if entry.index is None else array[entry.index].reshape(
            self.survey.disk_velocity_shape
        )
        velocity = np.ascontiguousarray(self.survey.velocity_from_disk(disk), dtype=np.float32)
        where = str(entry.path) if entry.index is None else f"{entry.path} sample {entry.index}"
        check_velocity_values(velocity, self.survey, where)
        return velocity

    def batch(self, indices: range | list[int]) -> np.ndarray:
        """Maps ``indices`` stacked: (len(indices), nz, nx) float32, survey units."""
        return np.stack([self[i] for i in indices]) if len(indices) else np.empty(
            (0, *self.survey.velocity_shape), np.float32
        )

    def fingerprint(self) -> list[list]:
        """[path, size, mtime_ns] of every file read, to notice inputs changed between runs."""
        files = dict.fromkeys(e.path for e in self._entries)
        return [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files]

    def check_all(self, block: int = 256) -> None:
        """Check every map's values now (units, finiteness), ``block`` maps at a time so a
        large stacked file is never read into memory whole."""
        for file in dict.fromkeys(e.path for e in self._entries):
            array = self._open(file)
            if array.ndim == 2:
                check_velocity_values(array, self.survey, str(file))
                continue
            for start in range(0, len(array), block):
                check_velocity_values(array[start:start + block], self.survey, str(file))
