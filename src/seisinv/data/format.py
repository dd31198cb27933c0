"""The on-disk dataset formats, in one place: file names, manifest columns, stacked-file partners
and the sample-folder writer. The readers (``seisinv.data.layout``) and the writers of
``seisinv generate`` / ``simulate`` (``seisinv.generation``) both use these, so what one writes
the other reads.

- **Sample folder** (Speed & Structure): ``<id>/receiver_data_src_<shot name>.npy`` (nt,
  receivers) float32 per shot, in ``survey.shot_names`` order (``1..n`` when unnamed), plus
  ``vp_model.npy`` in the survey's on-disk axis order for labelled samples.
- **Stacked pair** (OpenFWI): gathers ``dataN.npy`` (n, shots, nt, receivers) with velocities
  ``modelN.npy`` (n, 1, *disk_velocity_shape) beside it or in a sibling ``model/`` folder when the
  data sit in ``data/``; or ``seisX.npy`` with ``velX.npy`` beside it (Kaggle family folders).
- **Generated dataset**: ``manifest.csv`` with ``MANIFEST_COLUMNS`` and ``survey.yaml``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from seisinv.io import publish_mode, save_npy
from seisinv.survey import Survey

SHOT_PREFIX = "receiver_data_src_"
VELOCITY_FILE = "vp_model.npy"
MANIFEST_FILE = "manifest.csv"
SURVEY_FILE = "survey.yaml"
MANIFEST_COLUMNS = ("id", "family", "seed", "file", "index", "survey", "seisinv_version")
TMP_MARK = ".tmp"

DATA_STEM = re.compile(r"^data(.*)$")
SEIS_STEM = re.compile(r"^seis(.*)$")
MODEL_STEM = re.compile(r"^(model|vel)(.*)$")


def shot_names(survey: Survey) -> tuple[str, ...]:
    """File suffixes of the shots in folder layouts (``1, 2, ...`` when the survey names none)."""
    return survey.shot_names or tuple(str(i + 1) for i in range(survey.n_shots))


def shot_file_names(survey: Survey) -> list[str]:
    """Per-shot file names of a sample folder: ``receiver_data_src_{name}.npy`` per shot."""
    return [f"{SHOT_PREFIX}{name}.npy" for name in shot_names(survey)]


def velocity_partner_candidates(data_path: Path) -> list[Path]:
    """Where the velocity file of a stacked gathers file may be, most likely first ([] for a
    file that is not ``dataN.npy`` / ``seisX.npy``)."""
    data_path = Path(data_path)
    stem = data_path.stem
    if (match := DATA_STEM.match(stem)) is not None:
        candidates = [data_path.with_name(f"model{match.group(1)}.npy")]
        if data_path.parent.name == "data":
            candidates.append(data_path.parent.parent / "model" / f"model{match.group(1)}.npy")
        return candidates
    if (match := SEIS_STEM.match(stem)) is not None:
        return [data_path.with_name(f"vel{match.group(1)}.npy")]
    return []


def velocity_partner(data_path: Path) -> Path | None:
    """The existing velocity file paired with a stacked gathers file, or None."""
    return next((c for c in velocity_partner_candidates(data_path) if c.exists()), None)


def velocity_path_for(data_path: Path) -> Path:
    """Where a writer puts the velocities of ``data_path`` (``data/dataN`` -> ``model/modelN``,
    ``dataN`` -> ``modelN`` beside it, ``seisX`` -> ``velX``)."""
    candidates = velocity_partner_candidates(data_path)
    if not candidates:
        return Path(data_path).with_name("model" + Path(data_path).stem + ".npy")
    return candidates[-1]


def write_sample_folder(
    folder: Path, gathers: np.ndarray, survey: Survey, velocity: np.ndarray | None = None,
    velocity_dtype: type = np.float64,
) -> Path:
    """Write one sample folder atomically: built under a temporary name, then renamed.

    Args:
        folder: the target folder (``ROOT/<id>``); replaced if it exists.
        gathers: (shots, nt, receivers); shot ``s`` goes to ``receiver_data_src_{name}.npy`` as
            (nt, receivers) float32.
        survey: gives shot names and the on-disk velocity axis order.
        velocity: (nz, nx) in survey units, depth first, written as ``vp_model.npy`` in the
            survey's on-disk order (``disk_velocity_shape``) as ``velocity_dtype`` (float64 like
            the challenge data); None writes no velocity file (a test sample).

    Returns:
        ``folder``.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=TMP_MARK, dir=folder.parent))
    publish_mode(tmp, directory=True)
    try:
        for name, shot in zip(shot_file_names(survey), gathers, strict=True):
            save_npy(tmp / name, np.ascontiguousarray(shot, dtype=np.float32))
        if velocity is not None:
            disk = survey.velocity_to_disk(np.asarray(velocity))
            save_npy(tmp / VELOCITY_FILE, np.ascontiguousarray(disk, dtype=velocity_dtype))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
