"""The training loop's state: what a checkpoint saves and what a resume restores, in one place.

``TrainState`` holds the loop's counters (step, epoch, micro-batch, best metric, stretch...).
``checkpoint_state`` assembles everything a checkpoint holds besides the weights from it and the
loop's objects; ``restore_state`` is its inverse. Both the checkpoint writer and the resume path
go through these two functions, so a field is saved if and only if it is listed here.

A *stretch* is one ``train`` call: a fresh run is stretch 0 and every ``--resume`` starts the
next one. Each stretch keeps its own best and last checkpoints (``checkpoints/history``).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch

from seisinv.errors import CheckpointError
from seisinv.training import checkpoint as ckpt


@dataclass
class TrainState:
    """Counters of a run, saved as ``state.json``'s ``"counters"``.

    Attributes:
        step: optimiser steps done.
        epoch: completed epochs.
        micro: micro-batches consumed in the current epoch (a resume skips them).
        best: best validation ``checkpoint.best_metric`` of the whole run (None before any).
        best_step: the step ``best`` was reached at.
        total_steps: steps the run is configured for.
        world_size: processes that trained (a mid-epoch resume needs the same number).
        stretch: index of this ``train`` call in the run (0, then +1 per resume).
        stretch_best, stretch_best_step: best of the current stretch and its step.
        init_from: the checkpoint the weights were initialised from (fine-tuning), if any.
        augment_skipped: augmented samples replaced by their unaugmented originals because the
            augmentation made them non-finite (whole run).
    """

    step: int = 0
    epoch: int = 0
    micro: int = 0
    best: float | None = None
    best_step: int | None = None
    total_steps: int = 0
    world_size: int = 1
    stretch: int = 0
    stretch_best: float | None = None
    stretch_best_step: int | None = None
    init_from: str | None = None
    augment_skipped: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, counters: dict) -> TrainState:
        """Read saved counters; keys of older checkpoints that are missing take defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in counters.items() if k in known})

    def next_stretch(self) -> TrainState:
        """The state a resumed call starts from: the next stretch, with no stretch best yet."""
        return TrainState(
            **{**self.to_dict(), "stretch": self.stretch + 1, "stretch_best": None,
               "stretch_best_step": None}
        )


def better(value: float, best: float | None, mode: str) -> bool:
    """True when ``value`` beats ``best`` (None: nothing to beat) in ``mode`` "min" or "max"."""
    if best is None:
        return True
    return value < best if mode == "min" else value > best


def rng_state() -> dict:
    """The global RNG states (Python, NumPy, torch CPU and CUDA) as checkpointable data."""
    py = random.getstate()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": list(np.random.get_state()),  # noqa: NPY002
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore states saved by ``rng_state``."""
    version, values, gauss = state["python"]
    random.setstate((version, tuple(values), gauss))
    np.random.set_state(tuple(state["numpy"]))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_state(
    state: TrainState, optimizer, scaler, survey, pipeline, model, last_val: dict,
    data: dict | None = None,
) -> dict:
    """Everything a checkpoint stores besides the weights (``save_checkpoint``'s ``state``).

    ``data`` is the identity of the training and validation data (``data_identity``), which a
    resume compares with the data it is given.
    """
    return {
        "counters": state.to_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": rng_state(),
        "survey": survey.to_dict(),
        "pipeline": pipeline.state(),
        "model": model.seisinv_config,
        "val": last_val,
        "data": data or {},
    }


def data_identity(config) -> dict:
    """Identity of a run's data (``seisinv.outdir.dataset_identity`` of ``config.data.train``
    and ``config.data.val``: resolved paths, file count, bytes and a fingerprint of every file's
    size and modification time)."""
    from seisinv.outdir import dataset_identity

    return {"train": dataset_identity(config.data.train),
            "val": dataset_identity(config.data.val)}


def restore_state(checkpoint: ckpt.Checkpoint, model, ema, optimizer, scaler) -> TrainState:
    """Load a verified checkpoint's weights and training state (all checks before any load);
    returns its counters. The survey and pipeline are restored by the caller (they are needed
    before the model exists).

    Raises:
        CheckpointError: missing entries, or weights / optimiser state that do not fit.
    """
    source = str(checkpoint.folder)
    ckpt.check_state_dict(model, checkpoint.model, f"{source}/{ckpt.MODEL_FILE}")
    if ema is not None:
        if checkpoint.ema is None:
            raise CheckpointError(f"{source}: has no {ckpt.EMA_FILE} but the config enables EMA")
        ckpt.check_state_dict(ema.module, checkpoint.ema, f"{source}/{ckpt.EMA_FILE}")
    saved = checkpoint.state
    for key in ("counters", "optimizer", "scaler", "rng"):
        if key not in saved:
            raise CheckpointError(f"{source}/{ckpt.STATE_JSON}: no {key!r} entry")
    saved_groups = saved["optimizer"].get("param_groups", [])
    if [len(g["params"]) for g in saved_groups] != [
        len(g["params"]) for g in optimizer.param_groups
    ]:
        raise CheckpointError(f"{source}: optimizer state does not match the model's parameters")
    model.load_state_dict(checkpoint.model, strict=True)
    if ema is not None:
        ema.module.load_state_dict(checkpoint.ema, strict=True)
    optimizer.load_state_dict(saved["optimizer"])
    scaler.load_state_dict(saved["scaler"])
    set_rng_state(saved["rng"])
    return TrainState.from_dict(saved["counters"])
