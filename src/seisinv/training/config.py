"""The typed configuration of one training run, loaded from YAML with ``--set`` overrides.

A run is fully described by one ``TrainConfig``; it is written to the run directory
(``config.yaml``) before the first step, so a checkpoint rebuilds its model, data pipeline and
survey without the command line. Packaged recipes live in ``seisinv/configs/<name>.yaml``.

Every section forbids unknown keys: a misspelt key is an error naming the key, never silently
ignored.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from seisinv.errors import ConfigError

PipelineStep = str | dict[str, Any]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Section):
    """Where the samples are and how they are turned into network inputs.

    Attributes:
        train: dataset roots or files read with ``seisinv.data.open_dataset`` (the training pool;
            with ``val`` empty, ``folds.val_fold`` of it is held out for validation).
        val: optional separate validation roots; when given, folds are not used.
        survey: survey preset name or YAML path.
        transforms: pipeline steps (``seisinv.data.build_pipeline``), fitted on the training
            samples and saved with the run.
        augment: augmentation steps (``seisinv.data.build_augment``), training only.
        limit: use at most this many training samples (first ones in id order); None for all.
        val_limit: use at most this many validation samples; None for all.
        weights: sampling weights: ``{key: weight}`` where a key is a ``train`` entry (a source)
            or a family name / ``fnmatch`` pattern (``Style_*``); a training sample is drawn with
            probability proportional to the product of the weights of the keys it matches (1
            when none), with replacement, ``len(train)`` draws per epoch. Empty: every sample
            once per epoch, shuffled.
        fraction_per_family: keep this fraction of each family's training samples (a number for
            every family, or ``{family: fraction}``, others kept whole); the kept samples are the
            first by a hash of (``seed``, id), so they are the same for any order and worker count.
            Validation samples are never subsampled.
    """

    train: list[str] = Field(default_factory=list)
    val: list[str] = Field(default_factory=list)
    survey: str = "openfwi"
    transforms: list[PipelineStep] = Field(default_factory=list)
    augment: list[PipelineStep] = Field(default_factory=list)
    limit: int | None = Field(None, ge=1)
    val_limit: int | None = Field(None, ge=1)
    weights: dict[str, float] = Field(default_factory=dict)
    fraction_per_family: float | dict[str, float] | None = None

    @model_validator(mode="after")
    def _weights_and_fractions(self) -> DataConfig:
        for key, weight in self.weights.items():
            if not weight >= 0:
                raise ValueError(f"weights.{key} = {weight} must be >= 0")
        fractions = self.fraction_per_family
        values = fractions.items() if isinstance(fractions, dict) else [("", fractions)]
        for key, fraction in values:
            if fraction is not None and not 0 < fraction <= 1:
                where = f"fraction_per_family.{key}" if key else "fraction_per_family"
                raise ValueError(f"{where} = {fraction} must lie in (0, 1]")
        return self


class FoldsConfig(_Section):
    """K-fold split of the training pool (synthetic samples never validate).

    Attributes:
        k: number of folds (>= 2).
        val_fold: index of the fold used for validation, ``0 <= val_fold < k``; None trains on
            every sample without validation (when ``data.val`` is empty too).
        seed: seed of the fold assignment (independent of the training seed).
        file: optional folds CSV (``seisinv.data.folds.write_folds``) instead of assigning.
        holdout: fraction of real samples kept out of training and validation (final test).
    """

    k: int = Field(5, ge=2)
    val_fold: int | None = Field(0, ge=0)
    seed: int = 0
    file: str | None = None
    holdout: float = Field(0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _fold_in_range(self) -> FoldsConfig:
        if self.val_fold is not None and self.val_fold >= self.k:
            raise ValueError(f"val_fold {self.val_fold} must be below k={self.k}")
        return self


class ModelConfig(_Section):
    """Network: a name from ``seisinv.models`` and its options."""

    name: str = "inversionnet"
    options: dict[str, Any] = Field(default_factory=dict)


class LossTerm(_Section):
    """One term of the loss: a registered loss name, its weight and options."""

    name: str
    weight: float = 1.0
    options: dict[str, Any] = Field(default_factory=dict)


class LossConfig(_Section):
    """Weighted sum of per-sample loss terms, then a reduction over the batch.

    Attributes:
        terms: the terms (see ``seisinv.training.losses.LOSSES``).
        reduction: "mean" over samples, or "hard_example": per-sample weights
            ``exp(loss) / mean(exp(loss))`` (detached), emphasising the hardest samples.
    """

    terms: list[LossTerm] = Field(default_factory=lambda: [LossTerm(name="l1")])
    reduction: Literal["mean", "hard_example"] = "mean"

    @model_validator(mode="after")
    def _some_terms(self) -> LossConfig:
        if not self.terms:
            raise ValueError("at least one loss term is needed")
        return self


class OptimizerConfig(_Section):
    """AdamW; norms, biases and 1-d parameters get no weight decay."""

    name: Literal["adamw"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)


class ScheduleConfig(_Section):
    """Learning rate per optimiser step: linear warmup, then cosine (or constant) to ``min_lr``.

    Attributes:
        name: "cosine", "constant", or "timm_cosine" (timm's ``CosineLRScheduler``: cosine
            annealing with warm restarts, per optimiser step).
        warmup_steps: optimiser steps of linear warmup from ``warmup_start * lr`` to ``lr``.
        warmup_start: fraction of ``lr`` at step 0.
        min_lr: learning rate reached at the last step (cosine; each cycle's floor for
            timm_cosine).
        cycles: timm_cosine: number of cosine cycles (timm's ``cycle_limit``); after the last
            one the rate stays at ``min_lr``.
        cycle_steps: timm_cosine: steps of the first cycle (timm's ``t_initial``); None splits
            the run into ``cycles`` equal cycles (with ``cycle_mul`` 1).
        cycle_mul: timm_cosine: each cycle is this many times longer than the previous one.
        cycle_decay: timm_cosine: each restart's peak is this fraction of the previous peak.
    """

    name: Literal["cosine", "constant", "timm_cosine"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    warmup_start: float = Field(0.0, ge=0, le=1)
    min_lr: float = Field(0.0, ge=0)
    cycles: int = Field(1, ge=1)
    cycle_steps: int | None = Field(None, ge=1)
    cycle_mul: float = Field(1.0, gt=0)
    cycle_decay: float = Field(1.0, gt=0, le=1)


class EmaConfig(_Section):
    """Exponential moving average of the weights (timm ``ModelEmaV3``); validated and saved.

    Attributes:
        enabled: keep an EMA model (validation then uses it).
        decay: per-step decay; the first update copies the weights.
        warmup: timm's decay warmup (decay grows with the step count up to ``decay``).
    """

    enabled: bool = True
    decay: float = Field(0.999, ge=0, lt=1)
    warmup: bool = False


class LoggingConfig(_Section):
    """Console, ``metrics.jsonl``, TensorBoard and (optional) Weights & Biases logging.

    Losses, gradient norm and the non-finite check are read from the device once per
    ``every_steps`` optimiser steps (no host-device synchronisation in between).

    Attributes:
        every_steps: log (and check for non-finite losses) every this many optimiser steps.
        tensorboard: write ``RUN/tb``.
        progress: show a progress bar.
        wandb: also log to Weights & Biases (``pip install seisinv[wandb]``), into ``RUN/wandb``.
        wandb_project: the W&B project name.
        wandb_mode: "offline" (default: nothing leaves the machine; ``wandb sync`` uploads later)
            or "online".
    """

    every_steps: int = Field(10, ge=1)
    tensorboard: bool = True
    progress: bool = True
    wandb: bool = False
    wandb_project: str = "seisinv"
    wandb_mode: Literal["offline", "online"] = "offline"


class CheckpointConfig(_Section):
    """When to write ``checkpoints/last`` and how to choose ``checkpoints/best``.

    Attributes:
        every_steps: also save ``last`` every this many optimiser steps (None: epoch ends only).
        best_metric: validation metric that selects ``best`` ("mape", "mae", "ssim", "loss";
            "accuracy" for ``task: family``).
        best_mode: "min" or "max" for ``best_metric``.
        history: keep each stretch's (each ``train`` call's, resumed or not) best and last in
            ``checkpoints/history/stretch-NNN/{best,last}`` (hard links: free until replaced).
    """

    every_steps: int | None = Field(None, ge=1)
    best_metric: Literal["mape", "mae", "ssim", "loss", "accuracy"] = "mape"
    best_mode: Literal["min", "max"] = "min"
    history: bool = True


class TrainConfig(_Section):
    """One training run. See ``docs/training.md`` for every field.

    Attributes:
        name: recipe or run name (free text).
        epochs: passes over the training set; ``steps`` (optimiser steps) wins when both are set.
        batch_size: samples per micro-batch per process.
        accumulate: micro-batches per optimiser step.
        clip_grad_norm: max global gradient norm (None: no clipping).
        precision: "auto" (bf16 on CUDA when supported, else fp32), "fp32", "bf16", "fp16".
        compile: wrap the model in ``torch.compile``.
        seed: seed of weights, data order, augmentation and dropout.
        device: "auto", "cpu", "cuda" or "cuda:N".
        workers: DataLoader worker processes ("auto": the CPU cores per process, less one,
            at most 8).
        val_every_epochs: validate every this many epochs (and after the last step).
        task: "velocity" (gathers -> velocity map) or "family" (velocity map -> family index,
            cross-entropy, validated by accuracy; the model must expose ``families``).
        init_from: start from another run's weights, ``RUN[:best|last]`` (a run or checkpoint
            directory; new optimiser state, any data); ignored when resuming.
        init_weights: which weights of ``init_from``: "ema" (its EMA weights, the raw ones when
            it had no EMA) or "model".
        channels_last: keep the model and its 4-d inputs in ``torch.channels_last`` layout
            (faster convolutions on recent GPUs with bf16).
        prefetch_factor: batches each DataLoader worker prepares ahead.
        device_flip: where the ``flip`` augmentation re-simulates its unmatched shots: "auto"
            (on the training device, in one call per batch, when it is a GPU), true (on the
            training device whatever it is), false (in the DataLoader workers, per sample); see
            ``seisinv.training.device_flip``.
    """

    name: str = "run"
    data: DataConfig = Field(default_factory=DataConfig)
    folds: FoldsConfig = Field(default_factory=FoldsConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    ema: EmaConfig = Field(default_factory=EmaConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    epochs: int = Field(1, ge=1)
    steps: int | None = Field(None, ge=1)
    batch_size: Annotated[int, Field(ge=1)] | Literal["auto"] = 8
    val_batch_size: int | None = Field(None, ge=1)
    accumulate: int = Field(1, ge=1)
    clip_grad_norm: float | None = Field(1.0, gt=0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: bool = False
    seed: int = 0
    device: str = "auto"
    workers: Annotated[int, Field(ge=0)] | Literal["auto"] = 0
    val_every_epochs: int = Field(1, ge=1)
    task: Literal["velocity", "family"] = "velocity"
    init_from: str | None = None
    init_weights: Literal["ema", "model"] = "ema"
    channels_last: bool = False
    prefetch_factor: int = Field(2, ge=1)
    device_flip: bool | Literal["auto"] = "auto"

    @model_validator(mode="after")
    def _task_metric(self) -> TrainConfig:
        family_metrics = ("accuracy", "loss")
        metric = self.checkpoint.best_metric
        if self.task == "family" and metric not in family_metrics:
            if "best_metric" in self.checkpoint.model_fields_set:
                raise ValueError(
                    f"checkpoint.best_metric {metric!r}: task family validates "
                    f"{' and '.join(family_metrics)}"
                )
            self.checkpoint.best_metric, self.checkpoint.best_mode = "accuracy", "max"
        if self.task == "velocity" and metric == "accuracy":
            raise ValueError("checkpoint.best_metric 'accuracy' needs task: family")
        return self

    def to_dict(self) -> dict:
        """Plain-Python form, as written to ``config.yaml``."""
        return self.model_dump(mode="json")


# ---- loading -----------------------------------------------------------------------------
def recipe_names() -> list[str]:
    """Names of the packaged recipes (``seisinv/configs/<name>.yaml``)."""
    folder = resources.files("seisinv") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def recipe_path(name: str) -> Path:
    """Path of a packaged recipe.

    Raises:
        ConfigError: no recipe of that name.
    """
    path = Path(str(resources.files("seisinv") / "configs" / f"{name}.yaml"))
    if not path.is_file():
        raise ConfigError(
            f"unknown recipe {name!r}: give a YAML path or one of {', '.join(recipe_names())}"
        )
    return path


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b.c=value"`` into ``(["a", "b", "c"], value)``; value is parsed as YAML.

    Raises:
        ConfigError: no ``=``, an empty key or key part, or a value that is not valid YAML.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"overrides {text!r}: expected key=value, e.g. optimizer.lr=3e-4",
                          "overrides")
    parts = key.split(".")
    if any(not p for p in parts):
        raise ConfigError(f"overrides {text!r}: empty part in key {key!r}", "overrides")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"overrides {text!r}: value is not valid YAML ({exc})",
                          "overrides") from None
    return parts, value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Return a copy of ``data`` with dotted ``key=value`` overrides applied in order.

    Intermediate mappings are created when missing; an override that walks into a non-mapping
    value is an error. Unknown keys are left for validation to name.
    """
    import copy

    data = copy.deepcopy(data)
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise ConfigError(f"overrides {text!r}: {where} is {child!r}, not a mapping",
                                  "overrides")
            node = child
        node[parts[-1]] = value
    return data


_UNION_TAG = re.compile(r"^(constrained-)?(int|float|bool|str|literal\[.*\]|function-.*)$")


def config_from_dict(data: dict, source: str = "config") -> TrainConfig:
    """Validate a mapping as a ``TrainConfig``.

    Raises:
        ConfigError: naming each bad key with its dotted path and the reason.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        problems: dict[str, list[str]] = {}
        for err in exc.errors():
            # A union (``int | "auto"``) reports one error per member, tagged in the location.
            loc = [str(p) for p in err["loc"] if not _UNION_TAG.match(str(p))]
            where = ".".join(loc) or "(config)"
            message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.setdefault(where, []).append(message)
        problems = [f"{where}: {' or '.join(messages)}" for where, messages in problems.items()]
        raise ConfigError(f"{source}: invalid training config: {'; '.join(problems)}") from None


def load_config(
    name_or_path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()
) -> TrainConfig:
    """Load a config from a YAML path or a packaged recipe name, then apply ``--set`` overrides.

    Relative data paths stay relative to the current directory (not to the YAML file), so the
    same recipe works from any checkout.

    Raises:
        ConfigError: unknown recipe, unreadable YAML, bad override, or invalid field.
    """
    key = str(name_or_path)
    path = Path(key)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        if path.suffix in (".yaml", ".yml"):
            raise ConfigError(f"{path}: config file not found")
        path = recipe_path(key)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not a readable YAML file ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return config_from_dict(apply_overrides(data, list(overrides)), source=str(path))
