"""Write samples in the on-disk layouts the readers understand (atomically, via ``seisinv.io``).

Used by tests, benchmarks and examples to make small datasets; ``seisinv generate`` writes its own
manifest on top of the same files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seisinv.errors import DataError
from seisinv.io import save_npy
from seisinv.survey import Survey

from .format import velocity_path_for
from .format import write_sample_folder as write_folder


def write_sample_folder(
    root: str | Path,
    sample_id: str,
    gathers: np.ndarray,
    velocity: np.ndarray | None,
    survey: Survey,
    velocity_dtype: type = np.float64,
) -> Path:
    """Write one sample as ``root/<id>/receiver_data_src_<name>.npy`` (+ ``vp_model.npy``).

    Args:
        gathers: (shots, time, receivers) float32.
        velocity: (nz, nx) depth first in survey units, or None (test sample); stored in the
            survey's on-disk axis order (Speed & Structure: (nx, nz)) as ``velocity_dtype``.

    Returns:
        The sample folder.
    """
    gathers = np.asarray(gathers, dtype=np.float32)
    if gathers.shape != survey.gather_shape:
        raise DataError(f"sample {sample_id!r}: gathers {gathers.shape}, expected "
                        f"{survey.gather_shape}")
    return write_folder(Path(root) / sample_id, gathers, survey, velocity=velocity,
                        velocity_dtype=velocity_dtype)


def write_stacked(
    data_path: str | Path,
    gathers: np.ndarray,
    velocity: np.ndarray | None,
    survey: Survey,
    model_path: str | Path | None = None,
) -> tuple[Path, Path | None]:
    """Write an OpenFWI-style pair: gathers (n, S, T, R) float32, velocity (n, 1, *disk) float32.

    Args:
        data_path: e.g. ``root/data/data1.npy`` or ``root/seis2_1_0.npy``.
        velocity: (n, nz, nx) depth first in survey units, or None.
        model_path: where the velocity goes; default the reader's partner of ``data_path``
            (``data/dataN`` -> ``model/modelN``, ``dataN`` -> ``modelN``, ``seisX`` -> ``velX``).
    """
    data_path = Path(data_path)
    gathers = np.asarray(gathers, dtype=np.float32)
    if gathers.shape[1:] != survey.gather_shape:
        raise DataError(f"{data_path}: gathers {gathers.shape}, expected (n, "
                        f"{', '.join(map(str, survey.gather_shape))})")
    save_npy(data_path, gathers)
    if velocity is None:
        return data_path, None
    if model_path is None:
        model_path = velocity_path_for(data_path)
    disk = survey.velocity_to_disk(np.asarray(velocity, dtype=np.float32))
    save_npy(model_path, np.ascontiguousarray(disk[:, None]))
    return data_path, Path(model_path)
