"""Training losses: a registry of per-sample terms, combined with weights and reduced over a batch.

Every registered builder takes a ``LossContext`` and its options and returns a function
``(pred, target, gathers) -> (batch,)`` giving one loss value per sample:

- ``pred``, ``target``: ``(batch, nz, nx)`` velocities in survey units, depth first.
- ``gathers``: ``(batch, shots, time, receivers)``, the network input after the data pipeline.

Distance terms (``l1``, ``mse``, ``depth_l1``, ``gradient``, ``smoothness``) measure velocities
divided by the survey's range ``vmax - vmin`` so that one learning rate suits both surveys;
``mape`` is in the challenge's own units (a fraction). ``build_loss`` sums the weighted terms per
sample, then reduces over the batch by a plain mean or by hard-example weighting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from seisinv.errors import ConfigError
from seisinv.metrics import mape_per_sample
from seisinv.registry import Registry
from seisinv.survey import Survey
from seisinv.training.config import LossConfig

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class LossContext:
    """What a loss builder may need: the survey and the fitted data pipeline (or None)."""

    survey: Survey
    pipeline: Any = None


LOSSES: Registry[Callable[..., LossFn]] = Registry("loss")


def _range(ctx: LossContext) -> float:
    return ctx.survey.vmax - ctx.survey.vmin


@LOSSES.register("l1")
def l1(ctx: LossContext) -> LossFn:
    """Mean |pred - target| / (vmax - vmin) per sample."""
    scale = _range(ctx)
    return lambda pred, target, gathers: ((pred - target).abs() / scale).mean(dim=(1, 2))


@LOSSES.register("mse")
def mse(ctx: LossContext) -> LossFn:
    """Mean ((pred - target) / (vmax - vmin))^2 per sample."""
    scale = _range(ctx)
    return lambda pred, target, gathers: (((pred - target) / scale) ** 2).mean(dim=(1, 2))


@LOSSES.register("mape")
def mape(ctx: LossContext) -> LossFn:
    """Speed & Structure's MAPE per sample: mean(|t - p| / (|t| + 1e-8)) (a fraction)."""
    return lambda pred, target, gathers: mape_per_sample(pred, target).to(pred.dtype)


def depth_weights(nz: int, bottom: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """(nz, 1) weights falling linearly from 1 at the surface (row 0) to ``bottom`` at row nz-1."""
    return torch.linspace(1.0, bottom, nz, device=device, dtype=dtype)[:, None]


@LOSSES.register("depth_l1")
def depth_l1(ctx: LossContext, bottom: float = 0.25) -> LossFn:
    """L1 / (vmax - vmin) weighted per depth row, 1 at the surface to ``bottom`` at the bottom.

    The shallow part, which the gathers constrain best, counts most (Speed & Structure's
    EVA-fusion solution).
    """
    if bottom < 0:
        raise ConfigError(f"loss depth_l1: bottom must be >= 0, got {bottom}")
    scale = _range(ctx)

    def fn(pred: torch.Tensor, target: torch.Tensor, gathers: torch.Tensor) -> torch.Tensor:
        weights = depth_weights(pred.shape[1], bottom, pred.device, pred.dtype)
        return ((pred - target).abs() / scale * weights).mean(dim=(1, 2))

    return fn


def _diffs(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Finite differences along depth (nz-1, nx) and horizontal (nz, nx-1) of (batch, nz, nx)."""
    return v[:, 1:, :] - v[:, :-1, :], v[:, :, 1:] - v[:, :, :-1]


@LOSSES.register("gradient")
def gradient(ctx: LossContext) -> LossFn:
    """L1 between the spatial differences of pred and target, / (vmax - vmin): sharp interfaces."""
    scale = _range(ctx)

    def fn(pred: torch.Tensor, target: torch.Tensor, gathers: torch.Tensor) -> torch.Tensor:
        (pz, px), (tz, tx) = _diffs(pred), _diffs(target)
        return ((pz - tz).abs().mean(dim=(1, 2)) + (px - tx).abs().mean(dim=(1, 2))) / scale

    return fn


@LOSSES.register("smoothness")
def smoothness(ctx: LossContext) -> LossFn:
    """Total variation of pred, / (vmax - vmin): a smoothness penalty needing no target."""
    scale = _range(ctx)

    def fn(pred: torch.Tensor, target: torch.Tensor, gathers: torch.Tensor) -> torch.Tensor:
        dz, dx = _diffs(pred)
        return (dz.abs().mean(dim=(1, 2)) + dx.abs().mean(dim=(1, 2))) / scale

    return fn


def differentiable_pipeline(pipeline) -> Callable[[torch.Tensor], torch.Tensor]:
    """The fitted pipeline's amplitude steps as a torch function, so gradients pass through it.

    ``seisinv.data.Pipeline`` works in numpy (a data-loading step); the physics loss needs the
    same mapping on simulated tensors with gradients. Supports ``scale``, ``zscore`` and ``clip``
    steps (the ones that keep the gather shape).

    Raises:
        ConfigError: the pipeline holds a step that changes the gather shape.
    """
    ops: list[Callable[[torch.Tensor], torch.Tensor]] = []
    for step in getattr(pipeline, "steps", []):
        if step.name == "scale":
            ops.append(lambda x, f=step.params["factor"]: x * f)
        elif step.name == "zscore":
            ops.append(lambda x, m=step.stats["mean"], s=step.stats["std"]: (x - m) / s)
        elif step.name == "clip":
            ops.append(lambda x, lo=step.params["low"], hi=step.params["high"]: x.clamp(lo, hi))
        else:
            raise ConfigError(
                f"loss physics: pipeline step {step.name!r} changes the gathers' shape; "
                "the physics loss supports pipelines of scale, zscore and clip steps only"
            )

    def apply(gathers: torch.Tensor) -> torch.Tensor:
        for op in ops:
            gathers = op(gathers)
        return gathers

    return apply


@LOSSES.register("physics")
def physics(ctx: LossContext, device: str = "auto") -> LossFn:
    """Data misfit: forward-model pred with ``seisinv.physics.simulate``, compare with the input.

    The simulated gathers ``(batch, shots, nt, receivers)`` go through the fitted pipeline (as
    torch operations, see ``differentiable_pipeline``) like the network input; each sample's
    misfit is ``sum((sim - gathers)^2) / sum(gathers^2)``
    (``seisinv.physics.misfit.residual_energy_ratio``, the misfit FWI and qc use), 0 for a
    perfect prediction of noise-free data. Costs one wave simulation per sample and step: small
    surveys only.
    """
    transform = differentiable_pipeline(ctx.pipeline)

    def fn(pred: torch.Tensor, target: torch.Tensor, gathers: torch.Tensor) -> torch.Tensor:
        from seisinv.physics import simulate
        from seisinv.physics.misfit import residual_energy_ratio

        simulated = transform(simulate(pred.float(), ctx.survey, device=device).to(gathers.device))
        return residual_energy_ratio(simulated, gathers.float())

    return fn


class Loss:
    """The configured loss: weighted per-sample terms, reduced over the batch.

    Calling it with ``pred``, ``target`` (batch, nz, nx) survey units and ``gathers``
    (batch, shots, time, receivers) returns ``(total, parts)``: the scalar to minimise and a dict
    of each term's batch mean (detached floats) for logging.
    """

    def __init__(self, config: LossConfig, ctx: LossContext) -> None:
        self.config = config
        self.terms: list[tuple[str, float, LossFn]] = []
        for term in config.terms:
            builder = LOSSES.get(term.name)
            try:
                fn = builder(ctx, **term.options)
            except TypeError as exc:
                raise ConfigError(
                    f"loss {term.name!r}: bad options {term.options} ({exc})"
                ) from None
            self.terms.append((term.name, term.weight, fn))

    def per_sample(
        self, pred: torch.Tensor, target: torch.Tensor, gathers: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted sum of the terms per sample, (batch,), and the per-term batch means."""
        total = pred.new_zeros(pred.shape[0], dtype=torch.float32)
        parts: dict[str, float] = {}
        for name, weight, fn in self.terms:
            value = fn(pred.float(), target.float(), gathers).float()
            parts[name] = float(value.detach().mean())
            total = total + weight * value
        return total, parts

    def __call__(
        self, pred: torch.Tensor, target: torch.Tensor, gathers: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        per_sample, parts = self.per_sample(pred, target, gathers)
        return reduce_batch(per_sample, self.config.reduction), parts


def hard_example_weights(per_sample: torch.Tensor) -> torch.Tensor:
    """(batch,) weights ``exp(l_i) / mean_j exp(l_j)`` (mean 1), detached from the graph."""
    return torch.softmax(per_sample.detach(), dim=0) * per_sample.shape[0]


def reduce_batch(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    """(batch,) -> scalar: plain mean, or the mean weighted by ``hard_example_weights``."""
    if reduction == "hard_example":
        return (hard_example_weights(per_sample) * per_sample).mean()
    return per_sample.mean()
