"""One optimiser step and one validation pass: the pieces of the loop that touch tensors.

Kept apart from the loop's bookkeeping (``trainer.py``) so the distributed tests can call exactly
what training calls.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from seisinv.runtime import is_distributed
from seisinv.training.losses import Loss
from seisinv.training.optim import autocast
from seisinv.training.tasks import VelocityTask


def forward_backward(
    model: nn.Module,
    batches: list[dict],
    task,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    channels_last: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], int, torch.Tensor]:
    """Accumulate the gradients of ``batches`` (one optimiser step's micro-batches).

    Each micro-batch's loss is divided by the number of micro-batches, so the gradient is that of
    the mean loss over the step. Under DDP, gradients are only all-reduced on the last
    micro-batch (``no_sync`` on the others), where DDP averages them over processes.

    Nothing here reads a value back from the device: the loss, its terms and the count of
    micro-batches whose loss was not finite come back as device tensors, which the loop reads
    once per logging interval (``seisinv.training.syncs``).

    Args:
        model: the (possibly DDP-wrapped or compiled) model, in train mode.
        batches: dataset dicts (``gathers`` (B, S, T, R), ``velocity`` (B, nz, nx) survey units,
            ``family``...).
        task: a ``seisinv.training.tasks`` task (a ``Loss`` means the velocity task).
        device: where to compute.
        amp_dtype: autocast dtype, or None for fp32.
        scaler: GradScaler for fp16 (None or disabled otherwise).
        channels_last: give 4-d inputs the ``channels_last`` memory layout.

    Returns:
        (mean loss over the micro-batches, mean of each loss term, samples seen, number of
        micro-batches whose loss was NaN or infinite); tensors are 0-d, on ``device``, detached.
    """
    if isinstance(task, Loss):
        task = VelocityTask(task, survey=None)
    total = torch.zeros((), device=device)
    nonfinite = torch.zeros((), device=device, dtype=torch.int64)
    parts_sum: dict[str, torch.Tensor] = {}
    samples = 0
    n = len(batches)
    for i, batch in enumerate(batches):
        inputs, target = task.batch(batch, device)
        if channels_last and inputs.ndim == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        sync = (
            model.no_sync()
            if (is_distributed() and i < n - 1 and hasattr(model, "no_sync"))
            else nullcontext()
        )
        with sync:
            with autocast(device, amp_dtype):
                pred = task.forward(model, inputs, target)
            value, parts = task.loss(pred, target, inputs)
            scaled = value / n
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
        value = value.detach()
        nonfinite += (~torch.isfinite(value)).to(torch.int64)
        total += value.float() / n
        for key, v in parts.items():
            parts_sum[key] = parts_sum.get(key, 0.0) + v.float() / n
        samples += inputs.shape[0]
    return total, parts_sum, samples, nonfinite


def optimizer_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    clip_grad_norm: float | None,
) -> torch.Tensor | None:
    """Unscale, clip, step and zero the gradients.

    Returns the gradient norm before clipping as a 0-d device tensor (None when clipping is
    off); nothing is read back from the device (fp16's GradScaler does read its inf check).
    """
    if scaler is not None:
        scaler.unscale_(optimizer)
    norm = None
    if clip_grad_norm is not None:
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm).detach()
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return norm


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader,
    task,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> dict[str, dict[str, float]]:
    """Per-family sums of the task's validation metrics over ``loader`` (this process's share).

    Returns ``{family: {"n", <metric>: sum, ...}}`` (``task.metrics``: for the velocity task MAE
    in survey units, MAPE a fraction, SSIM on the survey's range, loss; "" is the family of
    samples whose family is unknown); ``summarise`` turns them into means after the sums of all
    processes are added. One device read per batch.
    """
    was_training = model.training
    model.eval()
    sums: dict[str, dict[str, float]] = {}
    for batch in loader:
        inputs, target = task.batch(batch, device)
        if channels_last and inputs.ndim == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp_dtype):
            pred = model(inputs)
        values = task.per_sample(pred, target, inputs)
        names = list(values)
        table = torch.stack([values[k].double() for k in names], dim=1).cpu().tolist()
        for family, row in zip(batch["family"], table, strict=True):
            entry = sums.setdefault(family, {"n": 0.0, **dict.fromkeys(names, 0.0)})
            entry["n"] += 1
            for key, v in zip(names, row, strict=True):
                entry[key] += v
    model.train(was_training)
    return sums


def summarise(sums: dict[str, dict[str, float]]) -> dict:
    """Means from per-family sums: ``{"n", <metric>..., "families": {...}}`` (velocity task:
    mae, mape, ssim, loss; family task: accuracy, loss).

    ``families`` lists each known family's means (omitted when no family is known).
    """

    def means(entry: dict[str, float]) -> dict[str, float]:
        n = entry["n"]
        return {"n": int(n), **{k: v / n for k, v in entry.items() if k != "n"}}

    overall: dict[str, float] = {}
    for entry in sums.values():
        for key, value in entry.items():
            overall[key] = overall.get(key, 0.0) + value
    if overall.get("n", 0) == 0:
        return {}
    result = means(overall)
    families = {name: means(entry) for name, entry in sorted(sums.items()) if name}
    if families:
        result["families"] = families
    return result
