"""Optimiser, mixed precision and EMA set-up for the training loop."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

from seisinv.errors import ConfigError
from seisinv.training.config import EmaConfig, OptimizerConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: weights with ``weight_decay``; norms, biases (every 0/1-d tensor) without.

    Decaying a normalisation scale or a bias only pulls it towards zero without regularising
    anything, so they are excluded (the usual transformer / timm practice).
    """
    decay, no_decay = [], []
    for param in model.parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(model: nn.Module, config: OptimizerConfig) -> torch.optim.Optimizer:
    """AdamW over ``param_groups(model, config.weight_decay)``."""
    return torch.optim.AdamW(
        param_groups(model, config.weight_decay),
        lr=config.lr,
        betas=tuple(config.betas),
        eps=config.eps,
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``precision`` on ``device``; None means plain fp32.

    "auto": bf16 on CUDA devices that support it, else fp16 on CUDA, fp32 on CPU.

    Raises:
        ConfigError: fp16 asked for on a CPU (GradScaler needs CUDA).
    """
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision fp16 needs a CUDA device; use fp32 or bf16 on the CPU")
    return torch.bfloat16 if precision == "bf16" else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    """Mixed-precision context for the forward pass (a no-op for fp32)."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def create_ema(model: nn.Module, config: EmaConfig):
    """timm ``ModelEmaV3`` of ``model`` in fp32, or None when EMA is off.

    Updated with ``ema.update(model, step=optimizer_step)`` (1-based): the first update copies
    the weights, later ones apply ``ema = decay * ema + (1 - decay) * weights``.
    """
    if not config.enabled:
        return None
    import inspect

    from timm.utils import ModelEmaV3

    options = {}
    # ``dtype`` exists from timm 1.0.31 (not in 1.0.30); without it the copy keeps the
    # model's dtype, float32 here (autocast changes activations, not parameters): same result.
    if "dtype" in inspect.signature(ModelEmaV3.__init__).parameters:
        options["dtype"] = torch.float32
    return ModelEmaV3(model, decay=config.decay, use_warmup=config.warmup, **options)
