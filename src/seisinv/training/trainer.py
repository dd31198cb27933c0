"""The training loop: ``train(config, run_dir)`` builds everything from a ``TrainConfig``, runs it.

Run directory::

    RUN/config.yaml          resolved config ("auto" values filled in), written before step 1
    RUN/metrics.jsonl        one JSON object per logged train step ("kind": "train") and per
                             validation ("kind": "val")
    RUN/tb/                  TensorBoard events (RUN/wandb/ with logging.wandb)
    RUN/checkpoints/last/    latest state (see ``seisinv.training.checkpoint``)
    RUN/checkpoints/best/    state with the best validation ``checkpoint.best_metric``
    RUN/checkpoints/history/stretch-NNN/{best,last}/
                             each stretch's (each ``train`` call's) best and last
    RUN/folds.csv            the validation fold split, when the run draws one

These names (``TRAIN_WRITES``) are all a run folder may hold besides ``seisinv report``'s
default ``RUN/report/``: a new run into a folder with anything else is refused, naming it.
``train`` holds the folder's lock (``seisinv.outdir.lock_output``) while it runs; a run folder
with checkpoints is continued with ``resume=True`` or deleted and started again with
``overwrite=True`` (only the names above are deleted).

What a checkpoint holds besides the weights is ``seisinv.training.state``: the loop's counters
(``TrainState``) and the optimiser, scaler, RNG, survey and pipeline states, assembled by one
function that saving and resuming share.

Resuming (``resume=True``) reloads ``checkpoints/last`` (weights, EMA, optimiser, scaler, RNG
states, counters), drops the log lines written after it, and continues with the same data order:
the sampler order is a function of (seed, epoch) and the batches of the epoch already consumed
are skipped, so the loss curve continues as if the run had never stopped.

Nothing in a step reads a value back from the device: losses, gradient norms and the count of
non-finite losses stay on the device and are read once per ``logging.every_steps`` steps and
before each checkpoint (a non-finite loss then stops the run, the last checkpoint intact).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import signal
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from seisinv.errors import ArgumentError, CheckpointError, ConfigError, SeisinvError
from seisinv.io import write_text, write_yaml
from seisinv.outdir import (
    LOCK_NAME,
    OutputError,
    Writes,
    check_out_not_inside_inputs,
    clear_output,
    describe_differences,
    differences,
    lock_output,
)
from seisinv.runtime import barrier, dist_info, init_distributed, resolve_device
from seisinv.survey import survey_from_dict
from seisinv.training import checkpoint as ckpt
from seisinv.training.config import TrainConfig, config_from_dict
from seisinv.training.data import TrainData, build_data, check_validation
from seisinv.training.distributed import (
    EpochSampler,
    all_reduce_sum,
    gather_objects,
    shard_indices,
    wrap_model,
)
from seisinv.training.losses import Loss, LossContext
from seisinv.training.optim import build_optimizer, create_ema, resolve_precision, set_lr
from seisinv.training.schedule import lr_at
from seisinv.training.state import (
    TrainState,
    better,
    checkpoint_state,
    data_identity,
    restore_state,
    rng_state,
    set_rng_state,
)
from seisinv.training.steps import evaluate, forward_backward, optimizer_step, summarise
from seisinv.training.syncs import to_host
from seisinv.training.tasks import build_task

log = logging.getLogger(__name__)

# What ``train`` writes at the top of a run folder (marker: config.yaml, written before step 1),
# plus ``seisinv report``'s default folder, which describes the run and is stale without it.
# ``overwrite=True`` deletes exactly these names; a folder holding anything else is refused.
TRAIN_WRITES = Writes(
    "config.yaml",
    ("config.yaml", "metrics.jsonl", "checkpoints", "tb", "wandb", "folds.csv", "report"),
)

# Config sections a resumed run may change; anything else must match the checkpoint's config.
RESUMABLE_CHANGES = (
    "epochs",
    "steps",
    "logging",
    "workers",
    "device",
    "checkpoint",
    "val_every_epochs",
    "prefetch_factor",
    "device_flip",
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
        stretch: index of this call's stretch (0 for a fresh run, +1 per resume).
        augment_skipped: augmented samples used unaugmented because they became non-finite
            (whole run).
    """

    run_dir: Path
    step: int
    epoch: int
    total_steps: int
    last_val: dict = field(default_factory=dict)
    best: float | None = None
    history: list[dict] = field(default_factory=list)
    stretch: int = 0
    augment_skipped: int = 0


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (weights, dropout)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - third-party code may use the global RNG
    torch.manual_seed(seed)


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
    change (``RESUMABLE_CHANGES``) taken from ``requested``. A requested ``batch_size: auto``
    matches the number the run resolved it to.

    Raises:
        ConfigError: ``requested`` differs from the saved config elsewhere (keys named).
    """
    config = config_from_dict(saved, source="checkpoint config.yaml")
    if requested is None:
        return config
    old, new = config.to_dict(), requested.to_dict()
    if new.get("batch_size") == "auto":
        new["batch_size"] = old["batch_size"]
    differing = [
        key
        for key in differences(old, new)
        if key.split(".")[0] not in RESUMABLE_CHANGES and key not in ("name", "init_from")
    ]
    if differing:
        raise ConfigError(
            f"resume: the config differs from the run's saved config in {', '.join(differing)}; "
            f"only {', '.join(RESUMABLE_CHANGES)} may change when resuming (or start a new run)",
            "resume",
        )
    merged = dict(old)
    merged.update({k: new[k] for k in RESUMABLE_CHANGES})
    return config_from_dict(merged, source="resumed config")


def check_resumed_data(saved: dict | None, now: dict, source: Path, accept: bool) -> None:
    """Refuse to resume over data that changed since the checkpoint ``source`` was written.

    Args:
        saved: the checkpoint's ``data`` entry (``state.data_identity``); None or {} for
            checkpoints written before seisinv recorded it (then nothing is checked).
        now: ``data_identity`` of the data the resume would read.
        accept: continue anyway (logged).

    Raises:
        ConfigError: the data differ and ``accept`` is False; the message names what changed.
    """
    if not saved:
        log.info("%s records no data identity (an older checkpoint); not compared", source)
        return
    keys = differences(saved, now)
    if not keys:
        return
    changed = describe_differences(saved, now, keys)
    if accept:
        log.warning("resuming although the data changed since %s: %s", source, changed)
        return
    raise ConfigError(
        f"resume: the data changed since {source} was saved: {changed}; a resumed run would "
        "mix two datasets in one model. Start a new run (pass overwrite=True), or, if the "
        "data are the same files (e.g. copied with new modification times), pass "
        "accept_data_change=True", "resume"
    )


class _Log:
    """metrics.jsonl, TensorBoard and (optionally) Weights & Biases on rank 0; silent elsewhere."""

    def __init__(self, run_dir: Path, config: TrainConfig, enabled: bool, purge_step: int | None):
        self.path = run_dir / "metrics.jsonl"
        self.enabled = enabled
        self.tb = None
        self.wandb = None
        if enabled and config.logging.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=purge_step)
            except ImportError:  # tensorboard is a dependency, but keep training without it
                self.tb = None
        if enabled and config.logging.wandb:
            self.wandb = start_wandb(run_dir, config)

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
        scalars = _scalars(entry)
        if self.tb is not None:
            for key, value in scalars.items():
                self.tb.add_scalar(key, value, entry["step"])
        if self.wandb is not None:
            self.wandb.log(scalars, step=entry["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


def _scalars(entry: dict) -> dict[str, float]:
    """``{"train/loss": ..., "val/mae": ..., "val/<family>/mape": ...}`` of a log entry."""
    kind = entry["kind"]
    scalars = {
        f"{kind}/{key}": value
        for key, value in entry.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
        and key not in ("step", "epoch")
    }
    for family, values in entry.get("families", {}).items():
        for key, value in values.items():
            if key != "n":
                scalars[f"{kind}/{family}/{key}"] = value
    return scalars


def start_wandb(run_dir: Path, config: TrainConfig):
    """A Weights & Biases run logging into ``RUN/wandb`` (``logging.wandb_mode``, offline by
    default). Its id is a hash of the run directory, so a resumed run continues the same one.

    Raises:
        ConfigError: the ``wandb`` package is not installed.
    """
    try:
        import wandb
    except ImportError:
        raise ConfigError(
            "logging.wandb: the wandb package is not installed; pip install 'seisinv[wandb]' "
            "(or set logging.wandb=false)"
        ) from None
    folder = run_dir / "wandb"
    folder.mkdir(parents=True, exist_ok=True)
    run_id = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]
    return wandb.init(
        project=config.logging.wandb_project,
        name=run_dir.name,
        id=run_id,
        resume="allow",
        dir=str(run_dir),
        mode=config.logging.wandb_mode,
        config=config.to_dict(),
    )


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


class _Window:
    """Device-side values of the steps since the last host read (one logging interval).

    ``nonfinite`` counts micro-batches whose loss was NaN/Inf, ``skipped`` augmented samples the
    dataset replaced because they became non-finite; ``loss``, ``parts`` and ``grad_norm`` are
    the latest step's. ``read`` fetches them all with one synchronisation.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.nonfinite = torch.zeros((), device=device, dtype=torch.int64)
        self.skipped = torch.zeros((), device=device, dtype=torch.int64)
        self.loss: torch.Tensor | None = None
        self.parts: dict[str, torch.Tensor] = {}
        self.grad_norm: torch.Tensor | None = None
        self.first_step = 1

    def add(self, loss, parts, grad_norm, nonfinite, batches: list[dict]) -> None:
        self.loss, self.parts, self.grad_norm = loss, parts, grad_norm
        self.nonfinite += nonfinite
        for batch in batches:
            flags = batch.get("augment_skipped")
            if flags is not None:
                self.skipped += flags.to(self.device, non_blocking=True).sum()

    def read(self) -> dict:
        """Host values: ``nonfinite``, ``skipped`` (summed over processes), and the latest
        ``loss``, ``grad_norm`` (NaN when clipping is off) and loss terms."""
        counts = all_reduce_sum(torch.stack([self.nonfinite, self.skipped]))
        values = [counts[0], counts[1]]
        names = list(self.parts)
        if self.loss is not None:
            norm = self.grad_norm if self.grad_norm is not None else torch.tensor(math.nan)
            values += [self.loss, norm, *[self.parts[k] for k in names]]
        host = to_host(values)
        result = {"nonfinite": int(host[0]), "skipped": int(host[1])}
        if self.loss is not None:
            result["loss"], result["grad_norm"] = host[2], host[3]
            result["parts"] = dict(zip(names, host[4:], strict=True))
        return result

    def reset(self, next_step: int) -> None:
        self.nonfinite.zero_()
        self.skipped.zero_()
        self.first_step = next_step


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


def parse_init_from(spec: str) -> tuple[str, str]:
    """``"RUN[:best|last]"`` -> (path, "best" | "last"); best when no suffix is given."""
    path, sep, which = spec.rpartition(":")
    if sep and which in ("best", "last") and path:
        return path, which
    return spec, "best"


def read_init_from(spec: str, weights: str) -> tuple[ckpt.Checkpoint, dict, str]:
    """Read the checkpoint ``init_from`` names: (checkpoint, the weights to load, their file).

    Raises:
        CheckpointError: no such run/checkpoint, or a damaged one (named).
    """
    from seisinv.training.run import find_checkpoint

    path, which = parse_init_from(spec)
    try:
        folder = find_checkpoint(path, which)
        source = ckpt.read_checkpoint(folder, with_state=False)
    except CheckpointError as exc:
        raise CheckpointError(f"init_from {spec!r}: {exc}") from None
    if weights == "ema" and source.ema is not None:
        return source, source.ema, f"{source.folder}/{ckpt.EMA_FILE}"
    return source, source.model, f"{source.folder}/{ckpt.MODEL_FILE}"


def check_batch_norm(model: torch.nn.Module, config: TrainConfig, n_train: int,
                     world_size: int, device: torch.device, probe_input=None) -> None:
    """Refuse a run whose one-sample training batches would fail in a BatchNorm layer.

    BatchNorm normalises each channel by statistics over the batch and positions; with one sample
    a layer whose features are 1 x 1 has a single value per channel and torch fails mid-run
    ("Expected more than 1 value per channel"). Layers with larger feature maps train fine at
    batch 1 (the Speed & Structure CAFormer U-Net's public batch is 1). When batches may hold one
    sample, one forward of ``probe_input`` (one sample as the model takes it) in training mode,
    with the running statistics left untouched, tells which case holds.

    Raises:
        ConfigError: naming ``batch_size`` (or the training set size when it is the limit).
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    per_rank = math.ceil(n_train / world_size)
    smallest = min(config.batch_size, per_rank)
    # Under DDP on CUDA, SyncBatchNorm takes its statistics over every process's batch.
    pooled = smallest * (world_size if device.type == "cuda" else 1)
    if pooled >= 2:
        return
    if probe_input is not None and _one_sample_batch_norm_ok(model, norms, probe_input):
        return
    name = config.model.name
    if config.batch_size == 1:
        raise ConfigError(
            f"batch_size=1: model {name!r} has BatchNorm layers with a single value per channel "
            "for one sample; use batch_size >= 2 (accumulate keeps the memory of a small "
            "batch) or a model without batch norm"
        )
    raise ConfigError(
        f"data.train: {n_train} training sample(s) per process, so every batch of model "
        f"{name!r} holds one and its BatchNorm layers need at least 2; add training samples "
        "(or raise data.limit)"
    )


def _one_sample_batch_norm_ok(model: torch.nn.Module, norms, probe_input) -> bool:
    """True when one training-mode forward of one sample passes every BatchNorm layer."""
    saved = [(m.momentum, m.num_batches_tracked.clone()
              if m.num_batches_tracked is not None else None) for m in norms]
    was_training = model.training
    try:
        for m in norms:
            m.momentum = 0.0  # running = (1 - 0) * running: the probe changes no statistic
        model.train()
        with torch.no_grad():
            model(probe_input)
        return True
    except ValueError as exc:
        if "Expected more than 1 value per channel" in str(exc):
            return False
        raise
    finally:
        for m, (momentum, tracked) in zip(norms, saved, strict=True):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)
        model.train(was_training)


def _resolve_auto(config: TrainConfig, model, task, data: TrainData, device, amp_dtype,
                  world_size: int) -> TrainConfig:
    """Fill in ``workers: auto`` and ``batch_size: auto`` (``seisinv.training.auto``)."""
    from seisinv.training.auto import probe_batch_size, suggest_workers

    update = {}
    if config.workers == "auto":
        update["workers"] = suggest_workers()
    if config.batch_size == "auto":
        from torch.utils.data import default_collate

        per_rank = math.ceil(len(data.train) / world_size)

        def trial(size: int) -> None:
            items = [data.train[i % len(data.train)] for i in range(size)]
            forward_backward(model, [default_collate(items)], task, device, amp_dtype)
            model.zero_grad(set_to_none=True)

        param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        # The trial steps must leave no trace: BatchNorm statistics and the RNG streams are put
        # back, so the run starts exactly as with a fixed batch size.
        weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        rng = rng_state()
        update["batch_size"] = probe_batch_size(trial, device, per_rank, param_bytes)
        model.load_state_dict(weights)
        set_rng_state(rng)
    if not update:
        return config
    log.info("resolved %s", ", ".join(f"{k}={v}" for k, v in update.items()))
    return config_from_dict({**config.to_dict(), **update}, source="resolved config")


def train(
    config: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    stop_after_steps: int | None = None,
    echo: Callable[[str], None] | None = None,
    overwrite: bool = False,
    accept_data_change: bool = False,
) -> TrainResult:
    """Train a model as ``config`` says, writing the run directory ``run_dir``.

    The run folder is locked while the call runs (rank 0 holds the lock under torchrun) and
    may not overlap the training or validation data.

    Args:
        config: the run's configuration.
        run_dir: output directory (created).
        resume: continue from ``run_dir/checkpoints/last`` (the saved config is used; only
            ``RESUMABLE_CHANGES`` sections are taken from ``config``).
        overwrite: ``run_dir`` holds an earlier run: delete what training wrote there
            (``TRAIN_WRITES``) and start again. Not with ``resume``.
        accept_data_change: with ``resume``, continue even though the training or validation
            data changed since the run's last checkpoint (its files' sizes or modification
            times; e.g. after copying the data elsewhere with new times). Without it such a
            resume is refused, naming what changed.
        stop_after_steps: stop, without saving, after this many optimiser steps of this call
            (simulates a killed job; for tests).
        echo: called with one line per validation (rank 0), e.g. ``console.print``.

    Returns:
        A ``TrainResult``.

    Raises:
        ConfigError: bad config, ``run_dir`` already holds a run and neither ``resume`` nor
            ``overwrite`` is given, one-sample batches for a BatchNorm model, or a ``resume``
            whose data changed (without ``accept_data_change``).
        ArgumentError: ``resume`` and ``overwrite`` together.
        OutputError: ``run_dir`` overlaps the data, holds files training does not write (named;
            never deleted), or cannot be created; ``LockedError``: another process is
            training into it.
        CheckpointError: ``resume`` with a missing, corrupted or mismatched checkpoint, or an
            ``init_from`` checkpoint whose weights do not fit the model.
        DataError: unreadable data, or a bad validation sample (checked before the first step).
        SeisinvError: interrupted by Ctrl-C or SIGTERM (single process), after saving
            ``checkpoints/last`` at the step boundary reached; or a non-finite loss (found at a
            logging step; the last checkpoint is left as it was).
    """
    run_dir = Path(run_dir)
    if resume and overwrite:
        raise ArgumentError(
            "overwrite: deletes the run and starts again, resume continues it; pass "
            "overwrite=True or pass resume=True, not both", "overwrite"
        )
    check_out_not_inside_inputs(run_dir, [*config.data.train, *config.data.val], "run_dir")
    # One trainer per run folder; torchrun's other ranks write nothing there.
    main = dist_info().is_main
    with lock_output(run_dir, "seisinv train", argument="run_dir") if main else nullcontext():
        prepare_run_dir(run_dir, resume=resume, overwrite=overwrite, is_main=main)
        return _train(config, run_dir, resume, stop_after_steps, echo, accept_data_change)


def prepare_run_dir(run_dir: str | Path, *, resume: bool, overwrite: bool,
                    is_main: bool = True) -> None:
    """Check that ``run_dir`` may take this run; for a new run, delete what an earlier one
    left there (``TRAIN_WRITES``) when it has no checkpoint or ``overwrite`` asks. Call it
    under the folder's lock.

    A resumed run only adds to its own folder, so other files are left alone there. A new run
    refuses a folder holding anything training does not write (naming it, deleting nothing),
    and one with checkpoints unless ``overwrite``. A run stopped before its first checkpoint
    has nothing to resume: its ``config.yaml`` and log lines are deleted so they do not mix
    with the new run's.

    Args:
        is_main: rank 0 (or a single process). Other torchrun ranks do nothing: rank 0 checks
            and may be clearing the folder meanwhile; if it refuses, torchrun stops them all.

    Raises:
        OutputError: files training does not write are there (named).
        ConfigError: checkpoints are there and neither ``resume`` nor ``overwrite`` is given.
    """
    run_dir = Path(run_dir)
    if resume or not is_main or not run_dir.is_dir():
        return
    present = sorted(p.name for p in run_dir.iterdir() if not p.name.startswith(LOCK_NAME))
    # Atomic writes of a killed run leave ``.config.yaml.<random>.tmp`` (seisinv.io): its own.
    ours = [name for name in present if name in TRAIN_WRITES.names or (
        name.endswith(".tmp") and any(name.startswith(f".{n}.") for n in TRAIN_WRITES.names))]
    foreign = [name for name in present if name not in ours]
    if foreign:
        listed = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        if len(foreign) == len(present):
            raise OutputError(
                f"run_dir {run_dir}: not empty and not a run folder (found {listed}); choose "
                "an empty or new folder", "run_dir"
            )
        raise OutputError(
            f"run_dir {run_dir}: a run folder that also holds files training does not write "
            f"({listed}); move them away or choose another run folder", "run_dir"
        )
    folders = run_dir / "checkpoints"
    checkpoints = folders.is_dir() and any(
        not p.name.startswith(".") for p in folders.iterdir()
    )
    if checkpoints and not overwrite:
        raise ConfigError(
            f"run_dir {run_dir}: already holds a run with checkpoints; pass resume=True to "
            "continue it, pass overwrite=True to delete it and start again, or choose another "
            "run folder", "run_dir"
        )
    if present:
        if checkpoints:
            log.warning("%s: deleting the earlier run (%s), as overwrite asks", run_dir,
                        ", ".join(present))
        else:
            log.info("%s: deleting %s of a run stopped before its first checkpoint", run_dir,
                     ", ".join(present))
        clear_output(run_dir, only=ours)


def _train(
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    stop_after_steps: int | None,
    echo: Callable[[str], None] | None,
    accept_data_change: bool = False,
) -> TrainResult:
    """``train`` in its locked, prepared run folder."""
    folders = run_dir / "checkpoints"
    last_dir, best_dir = folders / "last", folders / "best"
    checkpoint = None
    if resume:
        checkpoint = ckpt.read_checkpoint(last_dir)
        config = resumed_config(checkpoint.config, config)
    data_id = data_identity(config)  # saved with every checkpoint, compared on resume
    if checkpoint is not None:
        check_resumed_data(checkpoint.state.get("data"), data_id, last_dir, accept_data_change)

    device = resolve_device(config.device)
    info = init_distributed(device)
    main = info.is_main
    amp_dtype = resolve_precision(config.precision, device)
    seed_everything(config.seed)
    if main:
        for path in ckpt.clean_temporaries(folders):
            log.info("removed %s, left by an interrupted checkpoint save", path)

    # A resumed run keeps the survey it started with, even if its YAML file has moved.
    saved_survey = None
    if checkpoint is not None and "survey" in checkpoint.state:
        saved_survey = survey_from_dict(checkpoint.state["survey"], source=str(last_dir))
    init_source = None
    if checkpoint is None and config.init_from:
        init_source, init_weights, init_file = read_init_from(config.init_from,
                                                              config.init_weights)
    data: TrainData = build_data(config, survey=saved_survey)
    survey = data.survey
    if data.val is None and echo is not None and main:
        echo(f"no validation: {_no_validation_reason(config)}; keeping checkpoints/last only "
             "(set data.val=[DIR] to validate and keep the best)")
    saved_pipeline = None
    if checkpoint is not None:
        # The run continues with the statistics it started with, not a re-fit.
        saved_pipeline = checkpoint.state.get("pipeline")
    elif init_source is not None:
        # Fine-tuning keeps the input statistics the weights were trained with, when the
        # transforms are the same.
        source_transforms = init_source.config.get("data", {}).get("transforms")
        if source_transforms == config.to_dict()["data"]["transforms"]:
            saved_pipeline = init_source.state.get("pipeline")
    if saved_pipeline is not None:
        from seisinv.data import Pipeline

        data.pipeline = Pipeline.from_state(saved_pipeline, survey)
        data.train.pipeline = data.pipeline
        if data.val is not None:
            data.val.pipeline = data.pipeline

    from seisinv.models import create_model

    model = create_model(config.model.name, survey, **config.model.options).to(device)
    if init_source is not None:
        try:
            ckpt.load_weights(model, init_weights, init_file)
        except CheckpointError as exc:
            raise CheckpointError(f"init_from {config.init_from!r}: {exc}") from None
    loss = Loss(config.loss, LossContext(survey, data.pipeline, model))
    task = build_task(config.task, model, loss, survey)
    if config.task == "velocity":
        from seisinv.training.device_flip import setup_device_flip

        task.flip = setup_device_flip(config.device_flip, device, data.train, data.pipeline,
                                      survey)
    task.check_families([data.train.source.families[i] for i in data.train.indices],
                        "data.train")
    if data.val is not None:
        task.check_families([data.val.source.families[i] for i in data.val.indices],
                            "data.val" if config.data.val else "the validation fold")
        check_validation(data.val, "data.val" if config.data.val else "validation fold")
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    config = _resolve_auto(config, model, task, data, device, amp_dtype, info.world_size)
    n_train = len(data.train)
    probe = None
    if config.task == "velocity" and n_train:
        probe = data.train[0]["gathers"].unsqueeze(0).to(device)
        if config.channels_last and probe.ndim == 4:
            probe = probe.contiguous(memory_format=torch.channels_last)
    check_batch_norm(model, config, n_train, info.world_size, device, probe)

    train_model = wrap_model(model, device)
    ema = create_ema(model, config.ema)
    optimizer = build_optimizer(model, config.optimizer)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    if config.compile:
        train_model = torch.compile(train_model)

    total = total_steps(config, n_train, info.world_size)
    micro_per_epoch = micro_batches_per_epoch(n_train, config.batch_size, info.world_size)
    drop_last = math.ceil(n_train / info.world_size) >= config.batch_size
    state = TrainState(total_steps=total, world_size=info.world_size, init_from=config.init_from)
    if checkpoint is not None:
        saved = restore_state(checkpoint, model, ema, optimizer, scaler)
        if saved.micro and saved.world_size != info.world_size:
            raise CheckpointError(
                f"{checkpoint.folder}: saved mid-epoch by {saved.world_size} "
                f"process(es); resume it with the same number ({info.world_size} now)"
            )
        state = saved.next_stretch()
        state.total_steps, state.world_size = total, info.world_size
    history_dir = folders / "history" / f"stretch-{state.stretch:03d}"

    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_yaml(run_dir / "config.yaml", config.to_dict())
        if data.folds:
            from seisinv.data.folds import write_folds

            write_folds(run_dir / "folds.csv", data.folds)
    logger = _Log(run_dir, config, main, purge_step=state.step if resume else None)
    if resume:
        logger.truncate_after(state.step)
    window = _Window(device)
    last_val: dict = checkpoint.state.get("val", {}) if checkpoint is not None else {}

    def flush() -> dict:
        """Read the window from the device; stop on a non-finite loss (nothing saved)."""
        values = window.read()
        if values["skipped"]:
            state.augment_skipped += values["skipped"]
            if main:
                log.warning(
                    "steps %d-%d: %d augmented sample(s) became non-finite and were used "
                    "unaugmented (%d in the run)", window.first_step, state.step,
                    values["skipped"], state.augment_skipped,
                )
        if values["nonfinite"]:
            raise SeisinvError(
                f"the loss was not finite in {values['nonfinite']} micro-batch(es) between "
                f"steps {window.first_step} and {state.step}; nothing was saved after them, "
                f"{last_dir} is the last good state; lower optimizer.lr, enable "
                "clip_grad_norm, or check the inputs"
            )
        window.reset(state.step + 1)
        return values

    def write(folder: Path) -> None:
        ckpt.save_checkpoint(
            folder,
            model.state_dict(),
            ema.module.state_dict() if ema is not None else None,
            checkpoint_state(state, optimizer, scaler, survey, data.pipeline, model, last_val,
                             data_id),
            config.to_dict(),
        )

    def save_last() -> None:
        flush()
        if main:
            write(last_dir)
            if config.checkpoint.history:
                ckpt.link_checkpoint(last_dir, history_dir / "last")
        barrier()

    def save_best(run_best: bool) -> None:
        """Save this stretch's best (history) and, when ``run_best``, the run's best."""
        flush()
        if main:
            if config.checkpoint.history:
                write(history_dir / "best")
                if run_best:
                    ckpt.link_checkpoint(history_dir / "best", best_dir)
            elif run_best:
                write(best_dir)
        barrier()

    sampler = EpochSampler(
        n_train, seed=config.seed, shuffle=True, rank=info.rank, world_size=info.world_size,
        weights=data.weights, with_epoch=True,
    )
    from torch.utils.data import Subset

    from seisinv.data import make_loader

    loader = make_loader(
        data.train,
        config.batch_size,
        workers=config.workers,
        seed=config.seed * 1_000_003,
        sampler=sampler,
        drop_last=drop_last,
        persistent=True,
        prefetch_factor=config.prefetch_factor,
    )
    val_loader = None
    if data.val is not None:
        val_subset = Subset(data.val, shard_indices(len(data.val), info.rank, info.world_size))
        val_loader = make_loader(
            val_subset, config.val_batch_size or config.batch_size, workers=config.workers,
            persistent=True, prefetch_factor=config.prefetch_factor,
        )

    def validate() -> dict:
        if val_loader is None:
            return {}
        sums = evaluate(
            ema.module if ema is not None else model, val_loader, task, device, amp_dtype,
            channels_last=config.channels_last,
        )
        merged: dict[str, dict[str, float]] = {}
        for part in gather_objects(sums):
            for family, entry in part.items():
                target = merged.setdefault(family, dict.fromkeys(entry, 0.0))
                for key, value in entry.items():
                    target[key] += value
        return summarise(merged)

    from rich.progress import TextColumn

    from seisinv.runtime import progress_bar

    progress = progress_bar(
        TextColumn("loss {task.fields[loss]:.4g}"),
        TextColumn("lr {task.fields[lr]:.2e}"),
        TextColumn("{task.fields[rate]:.1f} samples/s"),
        disable=not (main and config.logging.progress),
    )
    result = TrainResult(run_dir=run_dir, step=state.step, epoch=state.epoch, total_steps=total,
                         best=state.best, stretch=state.stretch)
    steps_this_call = 0
    validated_at = state.step if checkpoint is not None else -1
    window.reset(state.step + 1)
    train_model.train()
    interrupt = _Interrupt(enabled=info.world_size == 1)
    try:
        with progress, interrupt:
            bar = progress.add_task(
                "train", total=total, completed=state.step, loss=math.nan, lr=0.0, rate=0.0
            )
            while state.step < total:
                sampler.set_epoch(state.epoch, start=state.micro * config.batch_size)
                data.train.set_epoch(state.epoch)
                group: list[dict] = []
                tic, window_samples = time.perf_counter(), 0
                for batch in loader:
                    group.append(batch)
                    state.micro += 1
                    if len(group) < config.accumulate and state.micro < micro_per_epoch:
                        continue
                    lr = lr_at(state.step, total, config.optimizer.lr, config.schedule)
                    set_lr(optimizer, lr)
                    value, parts, samples, nonfinite = forward_backward(
                        train_model, group, task, device, amp_dtype, scaler,
                        channels_last=config.channels_last,
                    )
                    grad_norm = optimizer_step(model, optimizer, scaler, config.clip_grad_norm)
                    window.add(value, parts, grad_norm, nonfinite, group)
                    group = []
                    state.step += 1
                    steps_this_call += 1
                    if ema is not None:
                        ema.update(model, step=state.step)
                    window_samples += samples * info.world_size
                    progress.update(bar, completed=state.step)
                    if state.step % config.logging.every_steps == 0 or state.step == total:
                        values = flush()
                        rate = window_samples / max(time.perf_counter() - tic, 1e-9)
                        entry = {
                            "kind": "train",
                            "step": state.step,
                            "epoch": state.epoch,
                            "loss": values["loss"],
                            "lr": lr,
                            "grad_norm": values["grad_norm"],
                            "samples_per_s": rate,
                            **values["parts"],
                        }
                        if values["skipped"]:
                            entry["augment_skipped"] = values["skipped"]
                        logger.write(entry)
                        result.history.append(entry)
                        progress.update(bar, loss=values["loss"], lr=lr, rate=rate)
                        tic, window_samples = time.perf_counter(), 0
                    if stop_after_steps is not None and steps_this_call >= stop_after_steps:
                        result.step, result.epoch = state.step, state.epoch
                        return result
                    every = config.checkpoint.every_steps
                    if (every and state.step % every == 0 and state.micro < micro_per_epoch
                            and state.step < total):
                        save_last()
                    if interrupt.requested:
                        save_last()
                        raise SeisinvError(
                            f"interrupted at step {state.step}/{total}; checkpoint saved in "
                            f"{last_dir}; pass resume=True to continue"
                        )
                    if state.step >= total:
                        break
                if state.micro >= micro_per_epoch:
                    state.epoch, state.micro = state.epoch + 1, 0
                if state.step >= total or state.epoch % config.val_every_epochs == 0:
                    if val_loader is not None and validated_at != state.step:
                        flush()  # never validate (or keep as best) weights a NaN reached
                        last_val = validate()
                        validated_at = state.step
                        logger.write({"kind": "val", "step": state.step, "epoch": state.epoch,
                                      **last_val})
                        if main and echo is not None:
                            echo(_val_line(state.step, state.epoch, last_val))
                        metric = last_val[config.checkpoint.best_metric]
                        mode = config.checkpoint.best_mode
                        if better(metric, state.stretch_best, mode):
                            state.stretch_best, state.stretch_best_step = metric, state.step
                            run_best = better(metric, state.best, mode)
                            if run_best:
                                state.best, state.best_step = metric, state.step
                            save_best(run_best)
                save_last()
    finally:
        logger.close()
    result.step, result.epoch, result.last_val = state.step, state.epoch, last_val
    result.best, result.augment_skipped = state.best, state.augment_skipped
    return result


def _val_line(step: int, epoch: int, summary: dict) -> str:
    if "accuracy" in summary:
        text = (f"step {step} epoch {epoch}: val accuracy {summary['accuracy']:.4f}  "
                f"loss {summary['loss']:.4g}")
        for family, values in summary.get("families", {}).items():
            text += f"\n  {family}: accuracy {values['accuracy']:.4f}  n={values['n']}"
        return text
    text = (
        f"step {step} epoch {epoch}: val MAE {summary['mae']:.4g}  MAPE {summary['mape']:.4%}  "
        f"SSIM {summary['ssim']:.4f}  loss {summary['loss']:.4g}"
    )
    for family, values in summary.get("families", {}).items():
        text += f"\n  {family}: MAE {values['mae']:.4g}  MAPE {values['mape']:.4%}  n={values['n']}"
    return text
