"""The training loop: ``train(config, run_dir)`` builds everything from a ``TrainConfig``, runs it.

Run directory::

    RUN/config.yaml          resolved config, written before the first step
    RUN/metrics.jsonl        one JSON object per logged train step ("kind": "train") and per
                             validation ("kind": "val")
    RUN/tb/                  TensorBoard events
    RUN/checkpoints/last/    latest state (see ``seisinv.training.checkpoint``)
    RUN/checkpoints/best/    state with the best validation ``checkpoint.best_metric``

Resuming (``resume=True``) reloads ``checkpoints/last`` (weights, EMA, optimiser, scaler, RNG
states, counters), drops the log lines written after it, and continues with the same data order:
the sampler order is a function of (seed, epoch) and the batches of the epoch already consumed
are skipped, so the loss curve continues as if the run had never stopped.
"""

from __future__ import annotations

import json
import math
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from seisinv.errors import CheckpointError, ConfigError, SeisinvError
from seisinv.io import write_text, write_yaml
from seisinv.runtime import resolve_device
from seisinv.survey import survey_from_dict
from seisinv.training import checkpoint as ckpt
from seisinv.training.config import TrainConfig, config_from_dict
from seisinv.training.data import TrainData, build_data
from seisinv.training.distributed import (
    EpochSampler,
    barrier,
    gather_objects,
    init_distributed,
    shard_indices,
    wrap_model,
)
from seisinv.training.losses import Loss, LossContext
from seisinv.training.optim import build_optimizer, create_ema, resolve_precision, set_lr
from seisinv.training.schedule import lr_at
from seisinv.training.steps import evaluate, forward_backward, optimizer_step, summarise

# Config sections a resumed run may change; anything else must match the checkpoint's config.
RESUMABLE_CHANGES = (
    "epochs",
    "steps",
    "logging",
    "workers",
    "device",
    "checkpoint",
    "val_every_epochs",
)


@dataclass
class TrainResult:
    """What a finished (or stopped) ``train`` call reached.

    Attributes:
        run_dir: the run directory.
        step: optimiser steps done.
        epoch: completed epochs.
        total_steps: steps the run is configured for.
        last_val: the last validation summary (see ``steps.summarise``), {} if none ran.
        best: best value of ``checkpoint.best_metric`` so far (None before any validation).
        history: the train-loss log entries of this call (``"kind": "train"`` lines).
    """

    run_dir: Path
    step: int
    epoch: int
    total_steps: int
    last_val: dict = field(default_factory=dict)
    best: float | None = None
    history: list[dict] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (weights, dropout)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - third-party code may use the global RNG
    torch.manual_seed(seed)


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


def micro_batches_per_epoch(n_train: int, batch_size: int, world_size: int = 1) -> int:
    """Training micro-batches per process and epoch.

    A final incomplete batch is dropped (a batch of one sample breaks BatchNorm and gives a noisy
    step), unless a process holds fewer samples than one batch: then it is its only batch.
    """
    per_rank = math.ceil(n_train / world_size)
    return max(1, per_rank // batch_size)


def steps_per_epoch(n_train: int, batch_size: int, accumulate: int, world_size: int = 1) -> int:
    """Optimiser steps in one epoch: the micro-batches grouped by ``accumulate`` (the last group
    may be shorter)."""
    return math.ceil(micro_batches_per_epoch(n_train, batch_size, world_size) / accumulate)


def total_steps(config: TrainConfig, n_train: int, world_size: int = 1) -> int:
    """Optimiser steps of the whole run: ``steps`` when set, else ``epochs`` full epochs."""
    if config.steps is not None:
        return config.steps
    return config.epochs * steps_per_epoch(
        n_train, config.batch_size, config.accumulate, world_size
    )


def resumed_config(saved: dict, requested: TrainConfig | None) -> TrainConfig:
    """The config a resumed run continues with: the saved one, with the sections a resume may
    change (``RESUMABLE_CHANGES``) taken from ``requested``.

    Raises:
        ConfigError: ``requested`` differs from the saved config elsewhere (keys named).
    """
    config = config_from_dict(saved, source="checkpoint config.yaml")
    if requested is None:
        return config
    old, new = config.to_dict(), requested.to_dict()
    differing = [
        key
        for key in _differences(old, new)
        if key.split(".")[0] not in RESUMABLE_CHANGES and key != "name"
    ]
    if differing:
        raise ConfigError(
            f"--resume: the config differs from the run's saved config in {', '.join(differing)}; "
            f"only {', '.join(RESUMABLE_CHANGES)} may change when resuming (or start a new run)"
        )
    merged = dict(old)
    merged.update({k: new[k] for k in RESUMABLE_CHANGES})
    return config_from_dict(merged, source="resumed config")


def _differences(old, new, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested mappings."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(old) + [k for k in new if k not in old]
        return [d for k in keys for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [prefix.rstrip(".")]


class _Log:
    """metrics.jsonl and TensorBoard on rank 0; silent elsewhere."""

    def __init__(self, run_dir: Path, config: TrainConfig, enabled: bool, purge_step: int | None):
        self.path = run_dir / "metrics.jsonl"
        self.enabled = enabled
        self.tb = None
        if enabled and config.logging.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=purge_step)
            except ImportError:  # tensorboard is a dependency, but keep training without it
                self.tb = None

    def truncate_after(self, step: int) -> None:
        """Drop entries logged after ``step`` (written by a run killed after its checkpoint)."""
        if not (self.enabled and self.path.exists()):
            return
        kept = [
            line
            for line in self.path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step
        ]
        write_text(self.path, "".join(line + "\n" for line in kept))

    def write(self, entry: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")
        if self.tb is not None:
            kind, step = entry["kind"], entry["step"]
            for key, value in entry.items():
                if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                    self.tb.add_scalar(f"{kind}/{key}", value, step)
            for family, values in entry.get("families", {}).items():
                for key in ("mae", "mape", "ssim"):
                    self.tb.add_scalar(f"{kind}/{family}/{key}", values[key], step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


class _Interrupt:
    """Turn the first Ctrl-C / SIGTERM into a request to save and stop at the next step boundary.

    Single process only: under torchrun the ranks would see the signal at different steps, so
    there the periodic checkpoints are what a resume uses. A second signal acts immediately.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        self.requested = True
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def __enter__(self) -> _Interrupt:
        if self.enabled:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def _better(value: float, best: float | None, mode: str) -> bool:
    if best is None:
        return True
    return value < best if mode == "min" else value > best


def _no_validation_reason(config: TrainConfig) -> str:
    """Why a run has no validation samples, in the config's terms."""
    if config.data.val:
        return "data.val holds no samples after data.val_limit"
    if config.folds.val_fold is None:
        return "folds.val_fold is null"
    return (
        f"validation fold {config.folds.val_fold} of {config.folds.k} got no samples "
        "(data.train has too few samples that can validate)"
    )


def train(
    config: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    stop_after_steps: int | None = None,
    echo: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a model as ``config`` says, writing the run directory ``run_dir``.

    Args:
        config: the run's configuration.
        run_dir: output directory (created).
        resume: continue from ``run_dir/checkpoints/last`` (the saved config is used; only
            ``RESUMABLE_CHANGES`` sections are taken from ``config``).
        stop_after_steps: stop, without saving, after this many optimiser steps of this call
            (simulates a killed job; for tests).
        echo: called with one line per validation (rank 0), e.g. ``console.print``.

    Returns:
        A ``TrainResult``.

    Raises:
        ConfigError: bad config, or ``run_dir`` already holds a run and ``resume`` is False.
        CheckpointError: ``resume`` with a missing, corrupted or mismatched checkpoint.
        DataError: unreadable data.
        SeisinvError: interrupted by Ctrl-C or SIGTERM (single process), after saving
            ``checkpoints/last`` at the step boundary reached.
    """
    run_dir = Path(run_dir)
    last_dir = run_dir / "checkpoints" / "last"
    checkpoint = None
    if resume:
        checkpoint = ckpt.read_checkpoint(last_dir)
        config = resumed_config(checkpoint.config, config)
    elif (run_dir / "checkpoints").exists() and any((run_dir / "checkpoints").iterdir()):
        raise ConfigError(
            f"{run_dir}: already holds a run with checkpoints; pass --resume to continue it "
            "or choose another --out"
        )

    device = resolve_device(config.device)
    info = init_distributed(device)
    amp_dtype = resolve_precision(config.precision, device)
    seed_everything(config.seed)

    # A resumed run keeps the survey it started with, even if its YAML file has moved.
    saved_survey = None
    if checkpoint is not None and "survey" in checkpoint.state:
        saved_survey = survey_from_dict(checkpoint.state["survey"], source=str(last_dir))
    data: TrainData = build_data(config, survey=saved_survey)
    survey = data.survey
    if data.val is None and echo is not None and info.is_main:
        echo(f"no validation: {_no_validation_reason(config)}; keeping checkpoints/last only "
             "(pass --set 'data.val=[DIR]' to validate and keep the best)")
    if checkpoint is not None:
        saved_pipeline = checkpoint.state.get("pipeline")
        if saved_pipeline is not None:
            from seisinv.data import Pipeline

            # The run continues with the statistics it started with, not a re-fit.
            data.pipeline = Pipeline.from_state(saved_pipeline, survey)
            data.train.pipeline = data.pipeline
            if data.val is not None:
                data.val.pipeline = data.pipeline

    from seisinv.models import create_model

    model = create_model(config.model.name, survey, **config.model.options).to(device)
    train_model = wrap_model(model, device)
    ema = create_ema(model, config.ema)
    optimizer = build_optimizer(model, config.optimizer)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    loss = Loss(config.loss, LossContext(survey, data.pipeline, model))
    if config.compile:
        train_model = torch.compile(train_model)

    n_train = len(data.train)
    total = total_steps(config, n_train, info.world_size)
    micro_per_epoch = micro_batches_per_epoch(n_train, config.batch_size, info.world_size)
    drop_last = math.ceil(n_train / info.world_size) >= config.batch_size
    step, epoch, micro, best, best_step = 0, 0, 0, None, None

    if checkpoint is not None:
        _restore(checkpoint, model, ema, optimizer, scaler)
        counters = checkpoint.state["counters"]
        step, epoch, micro = counters["step"], counters["epoch"], counters["micro"]
        if micro and counters.get("world_size", 1) != info.world_size:
            raise CheckpointError(
                f"{checkpoint.folder}: saved mid-epoch by {counters.get('world_size', 1)} "
                f"process(es); resume it with the same number ({info.world_size} now)"
            )
        best, best_step = counters.get("best"), counters.get("best_step")

    main = info.is_main
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_yaml(run_dir / "config.yaml", config.to_dict())
        if data.folds:
            from seisinv.data.folds import write_folds

            write_folds(run_dir / "folds.csv", data.folds)
    log = _Log(run_dir, config, main, purge_step=step if resume else None)
    if resume:
        log.truncate_after(step)

    def save(folder: Path, last_val: dict) -> None:
        if main:
            state = {
                "counters": {
                    "step": step,
                    "epoch": epoch,
                    "micro": micro,
                    "best": best,
                    "best_step": best_step,
                    "total_steps": total,
                    "world_size": info.world_size,
                },
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng_state(),
                "survey": survey.to_dict(),
                "pipeline": data.pipeline.state(),
                "model": model.seisinv_config,
                "val": last_val,
            }
            ckpt.save_checkpoint(
                folder,
                model.state_dict(),
                ema.module.state_dict() if ema is not None else None,
                state,
                config.to_dict(),
            )
        barrier()

    sampler = EpochSampler(
        n_train, seed=config.seed, shuffle=True, rank=info.rank, world_size=info.world_size
    )
    val_loader = None
    if data.val is not None:
        from torch.utils.data import Subset

        from seisinv.data import make_loader

        val_subset = Subset(data.val, shard_indices(len(data.val), info.rank, info.world_size))
        val_loader = make_loader(
            val_subset, config.val_batch_size or config.batch_size, workers=config.workers
        )

    def validate() -> dict:
        if val_loader is None:
            return {}
        sums = evaluate(
            ema.module if ema is not None else model, val_loader, survey, loss, device, amp_dtype
        )
        merged: dict[str, dict[str, float]] = {}
        for part in gather_objects(sums):
            for family, entry in part.items():
                target = merged.setdefault(family, dict.fromkeys(entry, 0.0))
                for key, value in entry.items():
                    target[key] += value
        return summarise(merged)

    from rich.progress import TextColumn

    from seisinv.data import make_loader
    from seisinv.runtime import progress_bar

    progress = progress_bar(
        TextColumn("loss {task.fields[loss]:.4g}"),
        TextColumn("lr {task.fields[lr]:.2e}"),
        TextColumn("{task.fields[rate]:.1f} samples/s"),
        disable=not (main and config.logging.progress),
    )
    result = TrainResult(run_dir=run_dir, step=step, epoch=epoch, total_steps=total, best=best)
    steps_this_call = 0
    last_val: dict = checkpoint.state.get("val", {}) if checkpoint is not None else {}
    validated_at = step if checkpoint is not None else -1
    train_model.train()
    interrupt = _Interrupt(enabled=info.world_size == 1)
    try:
        with progress, interrupt:
            task = progress.add_task(
                "train", total=total, completed=step, loss=math.nan, lr=0.0, rate=0.0
            )
            while step < total:
                sampler.set_epoch(epoch, start=micro * config.batch_size)
                data.train.set_epoch(epoch)
                loader = make_loader(
                    data.train,
                    config.batch_size,
                    workers=config.workers,
                    seed=config.seed * 1_000_003 + epoch,
                    sampler=sampler,
                    drop_last=drop_last,
                )
                group: list[dict] = []
                tic, window_samples = time.perf_counter(), 0
                for batch in loader:
                    group.append(batch)
                    micro += 1
                    if len(group) < config.accumulate and micro < micro_per_epoch:
                        continue
                    lr = lr_at(step, total, config.optimizer.lr, config.schedule)
                    set_lr(optimizer, lr)
                    value, parts, samples = forward_backward(
                        train_model, group, loss, device, amp_dtype, scaler
                    )
                    grad_norm = optimizer_step(model, optimizer, scaler, config.clip_grad_norm)
                    group = []
                    step += 1
                    steps_this_call += 1
                    if ema is not None:
                        ema.update(model, step=step)
                    window_samples += samples * info.world_size
                    rate = window_samples / max(time.perf_counter() - tic, 1e-9)
                    progress.update(task, completed=step, loss=value, lr=lr, rate=rate)
                    if step % config.logging.every_steps == 0 or step == total:
                        entry = {
                            "kind": "train",
                            "step": step,
                            "epoch": epoch,
                            "loss": value,
                            "lr": lr,
                            "grad_norm": grad_norm,
                            "samples_per_s": rate,
                            **parts,
                        }
                        log.write(entry)
                        result.history.append(entry)
                        tic, window_samples = time.perf_counter(), 0
                    if stop_after_steps is not None and steps_this_call >= stop_after_steps:
                        result.step, result.epoch = step, epoch
                        return result
                    every = config.checkpoint.every_steps
                    if every and step % every == 0 and micro < micro_per_epoch and step < total:
                        save(last_dir, last_val)
                    if interrupt.requested:
                        save(last_dir, last_val)
                        raise SeisinvError(
                            f"interrupted at step {step}/{total}; checkpoint saved in {last_dir}; "
                            "continue with `seisinv train --resume --out RUN_DIR`"
                        )
                    if step >= total:
                        break
                if micro >= micro_per_epoch:
                    epoch, micro = epoch + 1, 0
                if step >= total or epoch % config.val_every_epochs == 0:
                    if val_loader is not None and validated_at != step:
                        last_val = validate()
                        validated_at = step
                        log.write({"kind": "val", "step": step, "epoch": epoch, **last_val})
                        if main and echo is not None:
                            echo(_val_line(step, epoch, last_val))
                        metric = last_val[config.checkpoint.best_metric]
                        if _better(metric, best, config.checkpoint.best_mode):
                            best, best_step = metric, step
                            save(run_dir / "checkpoints" / "best", last_val)
                save(last_dir, last_val)
    finally:
        log.close()
    result.step, result.epoch, result.last_val, result.best = step, epoch, last_val, best
    return result


def _val_line(step: int, epoch: int, summary: dict) -> str:
    text = (
        f"step {step} epoch {epoch}: val MAE {summary['mae']:.4g}  MAPE {summary['mape']:.4%}  "
        f"SSIM {summary['ssim']:.4f}  loss {summary['loss']:.4g}"
    )
    for family, values in summary.get("families", {}).items():
        text += f"\n  {family}: MAE {values['mae']:.4g}  MAPE {values['mape']:.4%}  n={values['n']}"
    return text


def _restore(checkpoint: ckpt.Checkpoint, model, ema, optimizer, scaler) -> None:
    """Load a verified checkpoint's weights and training state (all checks before any load)."""
    source = str(checkpoint.folder)
    ckpt.check_state_dict(model, checkpoint.model, f"{source}/{ckpt.MODEL_FILE}")
    if ema is not None:
        if checkpoint.ema is None:
            raise CheckpointError(f"{source}: has no {ckpt.EMA_FILE} but the config enables EMA")
        ckpt.check_state_dict(ema.module, checkpoint.ema, f"{source}/{ckpt.EMA_FILE}")
    state = checkpoint.state
    for key in ("counters", "optimizer", "scaler", "rng"):
        if key not in state:
            raise CheckpointError(f"{source}/{ckpt.STATE_JSON}: no {key!r} entry")
    saved_groups = state["optimizer"].get("param_groups", [])
    if [len(g["params"]) for g in saved_groups] != [
        len(g["params"]) for g in optimizer.param_groups
    ]:
        raise CheckpointError(f"{source}: optimizer state does not match the model's parameters")
    model.load_state_dict(checkpoint.model, strict=True)
    if ema is not None:
        ema.module.load_state_dict(checkpoint.ema, strict=True)
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
