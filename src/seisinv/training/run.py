"""Load a trained run for inference: ``load_run(path) -> LoadedRun``.

Accepts a run directory (``RUN/``, using ``checkpoints/best`` when present, else
``checkpoints/last``) or a checkpoint directory (``RUN/checkpoints/last``). The model is rebuilt
from the recorded architecture, its weights checked (keys and shapes) before loading, and put in
eval mode; the fitted data pipeline and the survey come back with it, so predictions need
nothing but the directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from seisinv.errors import CheckpointError, SeisinvError
from seisinv.runtime import resolve_device
from seisinv.survey import Survey, survey_from_dict
from seisinv.training import checkpoint as ckpt
from seisinv.training.config import TrainConfig, config_from_dict


@dataclass
class LoadedRun:
    """A trained model ready to predict.

    Attributes:
        model: in eval mode on ``device``; maps transformed gathers ``(batch, S', T', R')`` to
            velocity ``(batch, nz, nx)`` in survey units, depth first.
        config: the run's resolved ``TrainConfig``.
        pipeline: the fitted ``seisinv.data.Pipeline``: apply it to raw gathers
            ``(..., shots, time, receivers)`` before the model.
        survey: the survey the model was trained for.
        checkpoint: the checkpoint directory the weights came from.
        which: "ema" or "model", the weights actually loaded.
        step: optimiser steps the weights were trained for.
        val: the validation summary stored with the checkpoint ({} if none).
        device: where the model lives.
    """

    model: torch.nn.Module
    config: TrainConfig
    pipeline: Any
    survey: Survey
    checkpoint: Path
    which: str
    step: int
    val: dict
    device: torch.device

    @torch.no_grad()
    def predict(self, gathers) -> torch.Tensor:
        """Raw gathers ``(batch, shots, time, receivers)`` (array or tensor) -> velocity
        ``(batch, nz, nx)`` float32 tensor in survey units on the CPU (pipeline applied here)."""
        inputs = torch.as_tensor(self.pipeline(gathers)).to(self.device, torch.float32)
        return self.model(inputs).float().cpu()


def find_checkpoint(path: str | os.PathLike, checkpoint: Literal["best", "last"] = "best") -> Path:
    """The checkpoint directory for ``path``: itself if it is one, else ``path/checkpoints/<which>``
    (falling back from best to last when no validation ever ran).

    Raises:
        CheckpointError: ``path`` is neither a run directory nor a checkpoint directory.
    """
    path = Path(path)
    if (path / ckpt.MANIFEST).exists() or path.with_name(path.name + ".old").exists():
        return path
    folders = path / "checkpoints"
    order = ("best", "last") if checkpoint == "best" else ("last",)
    for name in order:
        candidate = folders / name
        if (candidate / ckpt.MANIFEST).exists() or (
            folders / f"{name}.old" / ckpt.MANIFEST
        ).exists():
            return candidate
    if not path.exists():
        raise CheckpointError(f"{path}: no such run or checkpoint directory")
    wanted = "best or last" if checkpoint == "best" else "last"
    raise CheckpointError(
        f"{path}: not a run directory (no checkpoints/{wanted}) "
        f"nor a checkpoint directory (no {ckpt.MANIFEST})"
    )


def load_run(
    path: str | os.PathLike,
    which: Literal["ema", "model"] = "ema",
    device: str | torch.device = "auto",
    checkpoint: Literal["best", "last"] = "best",
) -> LoadedRun:
    """Rebuild a trained model with its config, fitted pipeline and survey.

    Args:
        path: a run directory or a checkpoint directory.
        which: "ema" for the EMA weights (falls back to the raw weights when the run had no EMA),
            "model" for the raw weights.
        device: "auto", "cpu", "cuda"...
        checkpoint: in a run directory, "best" (default; "last" when no best exists) or "last".

    Raises:
        CheckpointError: missing, corrupted or mismatched checkpoint (nothing is half-loaded).
    """
    if which not in ("ema", "model"):
        raise SeisinvError(f"which={which!r}: use 'ema' or 'model'")
    folder = find_checkpoint(path, checkpoint)
    saved = ckpt.read_checkpoint(folder, with_state=False)
    state = saved.state
    for key in ("survey", "pipeline", "model"):
        if key not in state:
            raise CheckpointError(f"{saved.folder}/{ckpt.STATE_JSON}: no {key!r} entry")
    try:
        config = config_from_dict(saved.config, source=f"{saved.folder}/{ckpt.CONFIG_FILE}")
        survey = survey_from_dict(state["survey"], source=f"{saved.folder}/{ckpt.STATE_JSON}")
    except SeisinvError as exc:
        raise CheckpointError(str(exc)) from None

    from seisinv.data import Pipeline
    from seisinv.models import rebuild_model

    pipeline = Pipeline.from_state(state["pipeline"], survey)
    model = rebuild_model(state["model"])
    weights, loaded = saved.model, "model"
    if which == "ema" and saved.ema is not None:
        weights, loaded = saved.ema, "ema"
    name = ckpt.EMA_FILE if loaded == "ema" else ckpt.MODEL_FILE
    ckpt.load_weights(model, weights, f"{saved.folder}/{name}")
    resolved = resolve_device(device)
    model.to(resolved).eval()
    return LoadedRun(
        model=model,
        config=config,
        pipeline=pipeline,
        survey=survey,
        checkpoint=saved.folder,
        which=loaded,
        step=int(state.get("counters", {}).get("step", 0)),
        val=state.get("val") or {},
        device=resolved,
    )
