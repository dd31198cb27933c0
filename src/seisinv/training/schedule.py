"""Learning rate as a pure function of the optimiser step: linear warmup, then cosine/constant,
or timm's ``CosineLRScheduler`` (cosine annealing with warm restarts)."""

from __future__ import annotations

import functools
import json
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
    if schedule.name == "timm_cosine":
        return timm_lr_at(step, total_steps, lr, schedule)
    warmup = min(schedule.warmup_steps, total_steps // 2)
    if step < warmup:
        start = schedule.warmup_start
        return lr * (start + (1.0 - start) * step / warmup)
    if schedule.name == "constant":
        return lr
    span = max(1, total_steps - warmup)
    progress = min(1.0, max(0.0, (step - warmup) / span))
    return schedule.min_lr + (lr - schedule.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def first_cycle_steps(total_steps: int, schedule: ScheduleConfig) -> int:
    """Steps of the first cosine cycle of ``timm_cosine``: ``cycle_steps`` when set, else the
    length that makes ``cycles`` cycles (each ``cycle_mul`` times the previous) fill the run
    after the warmup."""
    if schedule.cycle_steps is not None:
        return schedule.cycle_steps
    span = max(1, total_steps - min(schedule.warmup_steps, total_steps // 2))
    mul, cycles = schedule.cycle_mul, schedule.cycles
    share = cycles if mul == 1 else (1 - mul**cycles) / (1 - mul)
    return max(1, math.ceil(span / share))


@functools.lru_cache(maxsize=8)
def _timm_scheduler(total_steps: int, lr: float, schedule_json: str):
    import torch
    from timm.scheduler import CosineLRScheduler

    schedule = ScheduleConfig.model_validate(json.loads(schedule_json))
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    warmup = min(schedule.warmup_steps, total_steps // 2)
    scheduler = CosineLRScheduler(
        optimizer,
        t_initial=first_cycle_steps(total_steps, schedule),
        lr_min=schedule.min_lr,
        cycle_mul=schedule.cycle_mul,
        cycle_decay=schedule.cycle_decay,
        cycle_limit=schedule.cycles,
        warmup_t=warmup,
        warmup_lr_init=lr * schedule.warmup_start,
        warmup_prefix=True,
        t_in_epochs=False,
    )
    return scheduler, optimizer


def timm_lr_at(step: int, total_steps: int, lr: float, schedule: ScheduleConfig) -> float:
    """Learning rate of timm's ``CosineLRScheduler`` at optimiser step ``step`` (0-based).

    The scheduler runs per optimiser step (``t_in_epochs=False``) with ``t_initial =
    first_cycle_steps(...)``, ``lr_min = min_lr``, ``cycle_mul``, ``cycle_decay``,
    ``cycle_limit = cycles``, ``warmup_t`` = the (capped) warmup with ``warmup_prefix`` (the
    cycles start after it) from ``lr * warmup_start``; no noise. Evaluated on a private
    one-parameter optimiser, so it stays a function of the step (resume needs no scheduler
    state).
    """
    scheduler, optimizer = _timm_scheduler(
        total_steps, lr, json.dumps(schedule.model_dump(mode="json"), sort_keys=True)
    )
    scheduler.step_update(step)
    return float(optimizer.param_groups[0]["lr"])
