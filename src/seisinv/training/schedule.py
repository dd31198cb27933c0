"""Learning rate as a pure function of the optimiser step: linear warmup, then cosine/constant."""

from __future__ import annotations

import math

from seisinv.training.config import ScheduleConfig


def lr_at(step: int, total_steps: int, lr: float, schedule: ScheduleConfig) -> float:
    """Learning rate for optimiser step ``step`` (0-based) of ``total_steps``.

    Warmup: ``lr * (warmup_start + (1 - warmup_start) * step / warmup_steps)`` for
    ``step < warmup_steps``. Cosine: ``min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2`` with
    ``p = (step - warmup_steps) / (total_steps - warmup_steps)`` clamped to [0, 1].
    Constant: ``lr``.

    The warmup is capped at half the run (``warmup_steps = min(warmup_steps, total_steps // 2)``)
    so a run shorter than its recipe's warmup still reaches the configured rate.
    """
    warmup = min(schedule.warmup_steps, total_steps // 2)
    if step < warmup:
        start = schedule.warmup_start
        return lr * (start + (1.0 - start) * step / warmup)
    if schedule.name == "constant":
        return lr
    span = max(1, total_steps - warmup)
    progress = min(1.0, max(0.0, (step - warmup) / span))
    return schedule.min_lr + (lr - schedule.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
