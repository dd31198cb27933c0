"""seisinv.training: configs, losses, the training loop, checkpoints, resume and DDP.

Python API (names load lazily, so ``import seisinv.training`` does not import torch)::

    from seisinv.training import load_config, train, load_run

    config = load_config("tiny-openfwi", ["data.train=[data/train]", "epochs=2"])
    result = train(config, "runs/tiny")
    run = load_run("runs/tiny")            # model (eval, EMA weights), config, pipeline, survey
    velocity = run.predict(gathers)        # (batch, shots, time, receivers) -> (batch, nz, nx)

See ``docs/training.md``.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "TrainConfig": "config",
    "load_config": "config",
    "apply_overrides": "config",
    "config_from_dict": "config",
    "recipe_names": "config",
    "recipe_path": "config",
    "LOSSES": "losses",
    "Loss": "losses",
    "lr_at": "schedule",
    "train": "trainer",
    "TrainResult": "trainer",
    "load_run": "run",
    "LoadedRun": "run",
    "find_checkpoint": "run",
    "TrainState": "state",
    "SyncCounter": "syncs",
    "save_checkpoint": "checkpoint",
    "read_checkpoint": "checkpoint",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
