"""One optimiser step and one validation pass: the pieces of the loop that touch tensors.

Kept apart from the loop's bookkeeping (``trainer.py``) so the distributed tests can call exactly
what training calls.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch
from torch import nn

from seisinv.errors import SeisinvError
from seisinv.metrics import mae_per_sample, mape_per_sample, ssim_per_sample
from seisinv.survey import Survey
from seisinv.training.distributed import is_distributed
from seisinv.training.losses import Loss
from seisinv.training.optim import autocast


def forward_backward(
    model: nn.Module,
    batches: list[dict],
    loss: Loss,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[float, dict[str, float], int]:
    """Accumulate the gradients of ``batches`` (one optimiser step's micro-batches).

    Each micro-batch's loss is divided by the number of micro-batches, so the gradient is that of
    the mean loss over the step. Under DDP, gradients are only all-reduced on the last
    micro-batch (``no_sync`` on the others), where DDP averages them over processes.

    Args:
        model: the (possibly DDP-wrapped or compiled) model, in train mode.
        batches: dicts with ``gathers`` (B, S, T, R) and ``velocity`` (B, nz, nx) survey units.
        loss: the configured loss.
        device: where to compute.
        amp_dtype: autocast dtype, or None for fp32.
        scaler: GradScaler for fp16 (None or disabled otherwise).

    Returns:
        (mean loss over the micro-batches, mean of each loss term, samples seen).

    Raises:
        SeisinvError: a target holds NaN (a sample without velocity) or the loss is not finite.
    """
    total, parts_sum, samples = 0.0, {}, 0
    n = len(batches)
    for i, batch in enumerate(batches):
        gathers = batch["gathers"].to(device, non_blocking=True)
        target = batch["velocity"].to(device, non_blocking=True)
        if torch.isnan(target).any():
            raise SeisinvError(
                f"training batch with samples {list(batch.get('id', []))[:3]}... has no velocity; "
                "training data needs velocity maps"
            )
        sync = (
            model.no_sync()
            if (is_distributed() and i < n - 1 and hasattr(model, "no_sync"))
            else nullcontext()
        )
        with sync:
            with autocast(device, amp_dtype):
                pred = model(gathers)
            value, parts = loss(pred.float(), target, gathers)
            if not torch.isfinite(value):
                raise SeisinvError(
                    f"loss is {float(value)} on samples {list(batch.get('id', []))[:3]}; "
                    "lower optimizer.lr, enable clip_grad_norm, or check the inputs"
                )
            scaled = value / n
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
        total += float(value.detach()) / n
        for key, v in parts.items():
            parts_sum[key] = parts_sum.get(key, 0.0) + v / n
        samples += gathers.shape[0]
    return total, parts_sum, samples


def optimizer_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    clip_grad_norm: float | None,
) -> float:
    """Unscale, clip, step and zero the gradients; returns the gradient norm before clipping
    (NaN when clipping is off)."""
    if scaler is not None:
        scaler.unscale_(optimizer)
    norm = math.nan
    if clip_grad_norm is not None:
        norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm))
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
    survey: Survey,
    loss: Loss,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
) -> dict[str, dict[str, float]]:
    """Per-family sums of validation metrics over ``loader`` (this process's share).

    Returns ``{family: {"n", "mae", "mape", "ssim", "loss"}}`` holding sums over samples ("" is
    the family of samples whose family is unknown); ``summarise`` turns them into means after
    the sums of all processes are added. MAE is in survey units, MAPE a fraction, SSIM on the
    survey's velocity range.
    """
    was_training = model.training
    model.eval()
    sums: dict[str, dict[str, float]] = {}
    for batch in loader:
        gathers = batch["gathers"].to(device)
        target = batch["velocity"].to(device).float()
        with autocast(device, amp_dtype):
            pred = model(gathers)
        pred = pred.float()
        values = {
            "mae": mae_per_sample(pred, target),
            "mape": mape_per_sample(pred, target),
            "ssim": ssim_per_sample(pred, target, survey.vmin, survey.vmax),
            "loss": loss.per_sample(pred, target, gathers)[0],
        }
        for j, family in enumerate(batch["family"]):
            entry = sums.setdefault(
                family, {"n": 0.0, "mae": 0.0, "mape": 0.0, "ssim": 0.0, "loss": 0.0}
            )
            entry["n"] += 1
            for key, v in values.items():
                entry[key] += float(v[j])
    model.train(was_training)
    return sums


def summarise(sums: dict[str, dict[str, float]]) -> dict:
    """Means from per-family sums: ``{"n", "mae", "mape", "ssim", "loss", "families": {...}}``.

    ``families`` lists each known family's means (omitted when no family is known).
    """

    def means(entry: dict[str, float]) -> dict[str, float]:
        n = entry["n"]
        return {"n": int(n), **{k: v / n for k, v in entry.items() if k != "n"}}

    overall = {"n": 0.0, "mae": 0.0, "mape": 0.0, "ssim": 0.0, "loss": 0.0}
    for entry in sums.values():
        for key in overall:
            overall[key] += entry[key]
    if overall["n"] == 0:
        return {}
    result = means(overall)
    families = {name: means(entry) for name, entry in sorted(sums.items()) if name}
    if families:
        result["families"] = families
    return result
