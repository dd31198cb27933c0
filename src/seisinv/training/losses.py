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
    """What a loss builder may need: the survey, the fitted data pipeline (or None) and the
    model being trained (or None; the ``diffusion`` term calls its ``training_loss``)."""

    survey: Survey
    pipeline: Any = None
    model: Any = None


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


@LOSSES.register("depth_relative_l1")
def depth_relative_l1(ctx: LossContext, bottom: float = 0.25, hard_pixels: bool = False) -> LossFn:
    """Seed 001's loss: |pred - target| / target per pixel, weighted 1 -> ``bottom`` with depth.

    With ``hard_pixels`` (seed 001's eva02_tiny) each pixel is also weighted by
    ``exp(l) * nz * nx / sum(exp(l))`` over its sample, ``l`` the detached per-pixel loss, so
    the weights average to one per sample and the worst pixels (faults) count most.
    Returns the per-sample mean (a fraction, like MAPE).
    """
    if bottom < 0:
        raise ConfigError(f"loss depth_relative_l1: bottom must be >= 0, got {bottom}")

    def fn(pred: torch.Tensor, target: torch.Tensor, gathers: torch.Tensor) -> torch.Tensor:
        loss = (pred - target).abs() / target
        loss = loss * depth_weights(pred.shape[1], bottom, pred.device, pred.dtype)
        if hard_pixels:
            # As the seed: the hard-example weight comes from the unweighted relative error.
            raw = ((pred - target).abs() / target).detach()
            weight = torch.exp(raw)
            loss = loss * weight * (raw[0].numel() / weight.sum(dim=(1, 2), keepdim=True))
        return loss.mean(dim=(1, 2))

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


def _torch_step(step) -> Callable[[torch.Tensor], torch.Tensor]:
    """One fitted ``seisinv.data`` pipeline step as a differentiable torch function on
    ``(batch, shots, time, receivers)`` tensors, equal to the numpy step (same matrices, same
    layouts; see ``seisinv.data.transforms``)."""
    p = step.params
    if step.name == "scale":
        return lambda x: x * p["factor"]
    if step.name == "zscore":
        return lambda x: (x - step.stats["mean"]) / step.stats["std"]
    if step.name == "clip":
        return lambda x: x.clamp(p["low"], p["high"])
    if step.name == "resample":

        def resample(x: torch.Tensor) -> torch.Tensor:
            from seisinv.data.transforms import resampling_matrix

            if x.shape[-2] == p["length"]:
                return x
            matrix = torch.from_numpy(resampling_matrix(x.shape[-2], p["length"]).toarray())
            return torch.einsum("kt,...tr->...kr", matrix.to(x.device, x.dtype), x)

        return resample
    if step.name == "crop":
        return lambda x: x[..., p["start"] : p["start"] + p["length"], :]
    if step.name == "time_to_width":

        def time_to_width(x: torch.Tensor) -> torch.Tensor:
            *lead, shots, time, receivers = x.shape
            c = p["chunks"]
            out = x.reshape(*lead, shots, c, time // c, receivers).movedim(-3, -2)
            return out.reshape(*lead, shots, time // c, c * receivers)

        return time_to_width
    if step.name == "pad_receivers":

        def pad(x: torch.Tensor) -> torch.Tensor:
            extra = p["to"] - x.shape[-1]
            if p.get("mode", "constant") == "edge":
                return torch.cat([x, x[..., -1:].expand(*x.shape[:-1], extra)], dim=-1)
            return torch.nn.functional.pad(x, (0, extra))

        return pad
    if step.name == "shots_side_by_side":

        def side_by_side(x: torch.Tensor) -> torch.Tensor:
            *lead, shots, time, receivers = x.shape
            return x.movedim(-3, -2).reshape(*lead, 1, time, shots * receivers)

        return side_by_side
    raise ConfigError(
        f"loss physics: pipeline step {step.name!r} has no differentiable torch version; "
        "supported: scale, zscore, clip, resample, crop, time_to_width, pad_receivers, "
        "shots_side_by_side"
    )


def differentiable_pipeline(pipeline) -> Callable[[torch.Tensor], torch.Tensor]:
    """The fitted pipeline as a torch function, so gradients pass through it.

    ``seisinv.data.Pipeline`` works in numpy (a data-loading step); the physics loss needs the
    same mapping on simulated tensors with gradients. Every registered step has a torch
    version (amplitude steps and the shape-changing resample, crop, time_to_width,
    pad_receivers, shots_side_by_side), so the simulated raw-domain gathers land in exactly the
    network input's domain and shape.

    Raises:
        ConfigError: the pipeline holds a step without a torch version.
    """
    ops = [_torch_step(step) for step in getattr(pipeline, "steps", [])]

    def apply(gathers: torch.Tensor) -> torch.Tensor:
        for op in ops:
            gathers = op(gathers)
        return gathers

    return apply


@LOSSES.register("physics")
def physics(ctx: LossContext, device: str = "auto", shots: list[int] | None = None) -> LossFn:
    """Data misfit: forward-model pred with ``seisinv.physics.simulate``, compare with the input.

    The predicted map is simulated in the raw survey domain (``(batch, shots, nt, receivers)``)
    and the simulated gathers go through the run's fitted pipeline (as torch operations, see
    ``differentiable_pipeline``: resampling, crops and pads included) like the network input,
    so both are compared in the network input's domain; each sample's misfit is
    ``sum((sim - gathers)^2) / sum(gathers^2)`` (``seisinv.physics.misfit.residual_energy_ratio``,
    the misfit FWI and qc use), 0 for a perfect prediction of noise-free data. Costs one wave
    simulation per sample and step: small surveys only.

    Args:
        device: where the simulation runs ("auto", "cpu", "cuda").
        shots: simulate and compare only these shots (indices into the survey's shot list),
            e.g. ``[2]`` for the middle of five OpenFWI shots: the cost
            falls with the shot count (tiny test recipes). None: every shot. Needs a pipeline
            that keeps the shots axis (not ``shots_side_by_side``).

    Raises:
        ConfigError: bad ``shots``, or ``shots`` with a pipeline that merges the shots.
    """
    transform = differentiable_pipeline(ctx.pipeline)
    if shots is not None:
        shots = [int(k) for k in shots]
        n_shots = ctx.survey.n_shots
        if not shots or len(set(shots)) != len(shots) or not all(0 <= k < n_shots
                                                                 for k in shots):
            raise ConfigError(f"loss physics: shots {shots} must be distinct indices below the "
                              f"survey's {n_shots} shots")
        merged = [step.name for step in getattr(ctx.pipeline, "steps", [])
                  if step.name == "shots_side_by_side"]
        if merged:
            raise ConfigError("loss physics: shots needs a pipeline that keeps the shots axis; "
                              "this one has shots_side_by_side")

    def fn(pred: torch.Tensor, target: torch.Tensor, gathers: torch.Tensor) -> torch.Tensor:
        from seisinv.physics import simulate
        from seisinv.physics.misfit import residual_energy_ratio

        simulated = simulate(pred.float(), ctx.survey, device=device, shots=shots)
        observed = gathers.float() if shots is None else gathers.float()[:, shots]
        return residual_energy_ratio(transform(simulated.to(gathers.device)), observed)

    return fn


@LOSSES.register("diffusion")
def diffusion(ctx: LossContext) -> LossFn:
    """The model's own denoising loss: ``model.training_loss(gathers, target)`` per sample.

    For generative models such as ``diffusion_vel`` (DDPM objective: mean squared error of the
    predicted clean map, normalised to [-1, 1]). In training the loop computes it through the
    model's forward, ``model(gathers, target)`` (``MODEL_LOSS_TERMS``; a DDP-wrapped model is
    called through its wrapper, so the gradients are all-reduced as for any model) and passes
    it here as ``pred`` ``(batch,)``; given a velocity map ``pred`` (validation, direct calls)
    the term calls ``model.training_loss`` itself. It must be the loss's only term.

    Raises:
        ConfigError: a model without ``training_loss`` (at build); no model in the context
            (when called with a map: a context without a model only validates recipes).
    """
    model = ctx.model
    if model is not None and not callable(getattr(model, "training_loss", None)):
        name = getattr(model, "seisinv_config", {}).get("name")
        raise ConfigError(
            f"loss diffusion needs a model with training_loss (e.g. diffusion_vel); got {name!r}"
        )

    def fn(pred: torch.Tensor, target: torch.Tensor, gathers: torch.Tensor) -> torch.Tensor:
        if pred.ndim == 1:  # the model's forward already computed its loss (training)
            return pred
        if model is None:  # a context built only to validate a recipe has no model
            raise ConfigError(
                "loss diffusion needs the model: build the loss with LossContext(model=...)"
            )
        return model.training_loss(gathers, target)

    return fn


# Terms whose value the model's forward computes: the training loop calls ``model(gathers,
# target)`` (per-sample loss) instead of ``model(gathers)`` when the loss holds one.
MODEL_LOSS_TERMS = frozenset({"diffusion"})


class Loss:
    """The configured loss: weighted per-sample terms, reduced over the batch.

    Calling it with ``pred``, ``target`` (batch, nz, nx) survey units and ``gathers``
    (batch, shots, time, receivers) returns ``(total, parts)``: the scalar to minimise and a dict
    of each term's batch mean (detached 0-d tensors) for logging.
    """

    def __init__(self, config: LossConfig, ctx: LossContext) -> None:
        self.config = config
        self.terms: list[tuple[str, float, LossFn]] = []
        names = [term.name for term in config.terms]
        model_terms = sorted(MODEL_LOSS_TERMS.intersection(names))
        if model_terms and len(names) > 1:
            raise ConfigError(f"loss {model_terms[0]!r} is computed by the model's forward and "
                              f"must be the only term; got {names}")
        # The training loop calls ``model(gathers, target)`` for such a loss.
        self.model_loss = bool(model_terms)
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
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted sum of the terms per sample, (batch,), and the per-term batch means
        (detached 0-d tensors on the device: reading them waits for the device, so the training
        loop reads them once per logging interval)."""
        total = pred.new_zeros(pred.shape[0], dtype=torch.float32)
        parts: dict[str, torch.Tensor] = {}
        for name, weight, fn in self.terms:
            value = fn(pred.float(), target.float(), gathers).float()
            parts[name] = value.detach().mean()
            total = total + weight * value
        return total, parts

    def __call__(
        self, pred: torch.Tensor, target: torch.Tensor, gathers: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
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
