"""The on-disk prediction format shared by ``predict``, ``ensemble``, ``fwi``, ``evaluate``,
``qc``, ``submit`` and ``report``.

A prediction directory holds::

    PRED_DIR/
      manifest.json        {"survey": <survey dict>, "source": "...", "format": 1}
      velocity/<id>.npy    (nz, nx) float32, internal layout (depth first), survey units
      spread/<id>.npy      optional (nz, nx) float32 per-pixel standard deviation (ensembles)

One file per sample makes writing resumable (a finished sample is a file that exists) and atomic
(each file is written to a temporary name, then renamed).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from seisinv.errors import DataError
from seisinv.io import load_npy, save_npy, write_json
from seisinv.outdir import Writes
from seisinv.survey import Survey, survey_from_dict

FORMAT_VERSION = 1
# Everything a store writes at its top; ``predict`` writes nothing else (``seisinv.outdir``).
STORE_NAMES = ("manifest.json", "velocity", "spread")
PREDICTION_WRITES = Writes("manifest.json", STORE_NAMES)


class PredictionStore:
    """Read and write a prediction directory.

    Args:
        root: the directory.
        survey: required when creating a new store; read from ``manifest.json`` otherwise.
        source: free text recorded in the manifest (the run, the command).
        info: optional JSON-serialisable details recorded in a new manifest under ``"info"``
            (e.g. the checkpoint and test-time augmentation used).
    """

    def __init__(
        self,
        root: str | Path,
        survey: Survey | None = None,
        source: str = "",
        info: dict | None = None,
    ) -> None:
        self.root = Path(root)
        manifest = self.root / "manifest.json"
        if manifest.exists():
            try:
                meta = json.loads(manifest.read_text())
                stored = survey_from_dict(meta["survey"], source=str(manifest))
            except (json.JSONDecodeError, KeyError) as exc:
                raise DataError(f"{manifest}: not a seisinv prediction manifest ({exc})") from None
            if survey is not None and survey.to_dict() != stored.to_dict():
                raise DataError(
                    f"{self.root}: holds predictions for survey {stored.name!r}, "
                    f"not {survey.name!r}"
                )
            self.survey = stored
            self.meta = meta
        elif survey is None:
            raise DataError(f"{self.root}: no manifest.json; not a seisinv prediction directory")
        else:
            self.survey = survey
            self.meta = {"survey": survey.to_dict(), "source": source, "format": FORMAT_VERSION}
            if info:
                self.meta["info"] = info
            write_json(manifest, self.meta)

    def refuse_other_settings(self, info: dict, what: str = "settings") -> None:
        """Raise unless the samples already stored were made with ``info``.

        Compares each key of ``info`` that this manifest's ``"info"`` also records (paths equal as
        written or once resolved). A store without samples yet takes any settings.

        Raises:
            DataError: stored samples were made with other settings; resuming into the store
                would mix two answers under one manifest.
        """
        earlier = self.meta.get("info", {})
        differing = [k for k in info if k in earlier and not _same_setting(earlier[k], info[k])]
        if differing and self.ids():
            then = ", ".join(f"{key} {earlier[key]!r}" for key in differing)
            now = ", ".join(f"{key} {info[key]!r}" for key in differing)
            raise DataError(
                f"{self.root}: holds predictions made with {then}, not {now}; choose another "
                f"output (or delete this one) instead of mixing {what}"
            )

    def ids(self) -> list[str]:
        """Sorted ids of the samples with a finished prediction."""
        folder = self.root / "velocity"
        return sorted(p.stem for p in folder.glob("*.npy")) if folder.exists() else []

    def has(self, sample_id: str) -> bool:
        return (self.root / "velocity" / f"{sample_id}.npy").exists()

    def write(self, sample_id: str, velocity: np.ndarray, spread: np.ndarray | None = None) -> None:
        """Store one (nz, nx) velocity in survey units (and optionally its spread)."""
        velocity = np.asarray(velocity, dtype=np.float32)
        if velocity.shape != self.survey.velocity_shape:
            raise DataError(
                f"prediction {sample_id!r}: shape {velocity.shape}, expected "
                f"{self.survey.velocity_shape} (nz, nx) for survey {self.survey.name!r}"
            )
        if spread is not None:
            save_npy(self.root / "spread" / f"{sample_id}.npy", np.asarray(spread, np.float32))
        save_npy(self.root / "velocity" / f"{sample_id}.npy", velocity)

    def read(self, sample_id: str) -> np.ndarray:
        """(nz, nx) float32 velocity in survey units."""
        return load_npy(self.root / "velocity" / f"{sample_id}.npy")

    def read_spread(self, sample_id: str) -> np.ndarray | None:
        path = self.root / "spread" / f"{sample_id}.npy"
        return load_npy(path) if path.exists() else None


def _same_setting(earlier, now) -> bool:
    """Equal settings; paths (strings or lists of them) also when they resolve to the same files."""
    if earlier == now:
        return True
    if isinstance(earlier, list) and isinstance(now, list):
        return len(earlier) == len(now) and all(map(_same_setting, earlier, now))
    if isinstance(earlier, str) and isinstance(now, str) and earlier and now:
        return Path(earlier).resolve() == Path(now).resolve()
    return False
