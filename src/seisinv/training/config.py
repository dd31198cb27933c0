"""The typed configuration of one training run, loaded from YAML with ``--set`` overrides.

A run is fully described by one ``TrainConfig``; it is written to the run directory
(``config.yaml``) before the first step, so a checkpoint rebuilds its model, data pipeline and
survey without the command line. Packaged recipes live in ``seisinv/configs/<name>.yaml``.

Every section forbids unknown keys: a misspelt key is an error naming the key, never silently
ignored.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal

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
    """

    train: list[str] = Field(default_factory=list)
    val: list[str] = Field(default_factory=list)
    survey: str = "openfwi"
    transforms: list[PipelineStep] = Field(default_factory=list)
    augment: list[PipelineStep] = Field(default_factory=list)
    limit: int | None = Field(None, ge=1)
    val_limit: int | None = Field(None, ge=1)


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
        name: "cosine" or "constant".
        warmup_steps: optimiser steps of linear warmup from ``warmup_start * lr`` to ``lr``.
        warmup_start: fraction of ``lr`` at step 0.
        min_lr: learning rate reached at the last step (cosine only).
    """

    name: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    warmup_start: float = Field(0.0, ge=0, le=1)
    min_lr: float = Field(0.0, ge=0)


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
    """Console, ``metrics.jsonl`` and TensorBoard logging."""

    every_steps: int = Field(10, ge=1)
    tensorboard: bool = True
    progress: bool = True


class CheckpointConfig(_Section):
    """When to write ``checkpoints/last`` and how to choose ``checkpoints/best``.

    Attributes:
        every_steps: also save ``last`` every this many optimiser steps (None: epoch ends only).
        best_metric: validation metric that selects ``best`` ("mape", "mae", "ssim", "loss").
        best_mode: "min" or "max" for ``best_metric``.
    """

    every_steps: int | None = Field(None, ge=1)
    best_metric: Literal["mape", "mae", "ssim", "loss"] = "mape"
    best_mode: Literal["min", "max"] = "min"


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
        workers: DataLoader worker processes.
        val_every_epochs: validate every this many epochs (and after the last step).
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
    batch_size: int = Field(8, ge=1)
    val_batch_size: int | None = Field(None, ge=1)
    accumulate: int = Field(1, ge=1)
    clip_grad_norm: float | None = Field(1.0, gt=0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: bool = False
    seed: int = 0
    device: str = "auto"
    workers: int = Field(0, ge=0)
    val_every_epochs: int = Field(1, ge=1)

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
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. --set optimizer.lr=3e-4")
    parts = key.split(".")
    if any(not p for p in parts):
        raise ConfigError(f"--set {text!r}: empty part in key {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({exc})") from None
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
                raise ConfigError(f"--set {text!r}: {where} is {child!r}, not a mapping")
            node = child
        node[parts[-1]] = value
    return data


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
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(config)"
            message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{where}: {message}")
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
