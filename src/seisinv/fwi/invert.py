"""The FWI loop for a batch of samples: bounded model, multi-scale stages, optimiser, records.

``invert`` is the library entry point; ``seisinv.fwi.job`` wraps it for datasets and prediction
stores. The forward model is ``config.physics``'s (``fwi_forward``: deepwave's ``simulate`` or
OpenFWI's own scheme) unless a ``forward`` is injected (tests use a float64 or deliberately
mismatched one).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from seisinv.errors import ConfigError, DataError
from seisinv.fwi.config import FwiConfig
from seisinv.fwi.misfit import MISFITS
from seisinv.fwi.precondition import (
    REGULARIZERS,
    gaussian_smooth,
    precondition_gradient,
    prior_penalty,
)
from seisinv.fwi.signal import apply_filter, lowpass, wiener_filter
from seisinv.survey import Survey

# forward(velocity (n, nz, nx) survey units, shots or None) -> gathers (n, shots, nt, receivers)
Forward = Callable[[torch.Tensor, Sequence[int] | None], torch.Tensor]


@dataclass(frozen=True)
class FwiResult:
    """What one inversion of a batch returns.

    Attributes:
        velocity: ``(batch, nz, nx)`` float32 inverted velocity, survey units, depth first.
        misfit: ``(batch, iters)`` data misfit at the start of each iteration, in that
            iteration's band and shot subset.
        band_hz: ``(iters,)`` low-pass corner of each iteration (0: unfiltered).
        misfit_start, misfit_end: ``(batch,)`` full-band, all-shot misfit of the initial and the
            final model.
        model_mae: ``(batch, iters + 1)`` mean absolute error against ``true_velocity`` in survey
            units before each iteration and at the end, or None when no truth was given.
        wavelet_filter: ``(batch, nfreq)`` complex matching filter of the last estimate (None when
            the wavelet was not estimated).
        wall_s: wall time of the whole batch in seconds.
        prior, prior_reason: per sample, the prior used and why (L-BFGS; ``"none"`` for Adam).
        stop: per sample, why each L-BFGS run stopped (one entry per band and round).
        iterations, evaluations: per sample, accepted iterations and simulations (L-BFGS).
        family, family_source: per sample, the family the prior was chosen for (None: unknown)
            and where it came from (``"classifier"``, ``"label"`` or None; L-BFGS).
    """

    velocity: np.ndarray
    misfit: np.ndarray
    band_hz: np.ndarray
    misfit_start: np.ndarray
    misfit_end: np.ndarray
    model_mae: np.ndarray | None
    wavelet_filter: np.ndarray | None
    wall_s: float
    prior: list[str] | None = None
    prior_reason: list[str] | None = None
    stop: list[list[str]] | None = None
    iterations: list[int] | None = None
    evaluations: list[int] | None = None
    family: list[str | None] | None = None
    family_source: list[str | None] | None = None


class BoundedModel(torch.nn.Module):
    """Velocity ``v = vmin + (vmax - vmin) * sigmoid(p)``, optionally on a coarser grid.

    The parameter ``p`` is ``(batch, nzc, nxc)``; with ``coarsen > 1`` the velocity is bilinearly
    interpolated (corners aligned) to the survey grid ``(nz, nx)``, so it can never leave
    ``[vmin, vmax]``.
    """

    def __init__(self, initial: torch.Tensor, vmin: float, vmax: float, coarsen: int = 1,
                 margin: float = 0.002) -> None:
        super().__init__()
        self.vmin, self.vmax = vmin, vmax
        self.shape = tuple(initial.shape[-2:])
        coarse = initial
        if coarsen > 1:
            # Smooth before sampling the coarse nodes so the start is not aliased.
            nzc, nxc = ((n - 1) // coarsen + 1 for n in self.shape)
            coarse = F.interpolate(gaussian_smooth(initial, 0.5 * coarsen).unsqueeze(1),
                                   size=(nzc, nxc), mode="bilinear",
                                   align_corners=True).squeeze(1)
        fraction = ((coarse - vmin) / (vmax - vmin)).clamp(margin, 1 - margin)
        self.p = torch.nn.Parameter(torch.logit(fraction))

    def forward(self) -> torch.Tensor:
        """``(batch, nz, nx)`` velocity in survey units."""
        v = self.vmin + (self.vmax - self.vmin) * torch.sigmoid(self.p)
        if tuple(v.shape[-2:]) != self.shape:
            v = F.interpolate(v.unsqueeze(1), size=self.shape, mode="bilinear",
                              align_corners=True).squeeze(1)
        return v


def inversion_survey(survey: Survey, config: FwiConfig) -> Survey:
    """``survey`` with at least ``config.boundary_width`` cells of absorbing layer."""
    width = config.boundary_width
    if width is None or width <= survey.simulation.boundary_width:
        return survey
    return survey.replace(simulation=survey.simulation.model_copy(
        update={"boundary_width": width}))


def physics_forward(survey: Survey, device: torch.device) -> Forward:
    """``seisinv.physics.simulate`` (deepwave) on ``survey``, in the velocity's precision."""
    from seisinv.physics import simulate

    def forward(velocity: torch.Tensor, shots: Sequence[int] | None) -> torch.Tensor:
        dtype = velocity.dtype if velocity.dtype == torch.float64 else torch.float32
        return simulate(velocity, survey, device=device, shots=shots, dtype=dtype)

    return forward


def fwi_forward(survey: Survey, config: FwiConfig, device: torch.device) -> Forward:
    """The forward model ``config.physics`` names: ``deepwave`` (``physics_forward`` with at
    least ``config.boundary_width`` cells of PML) or ``openfwi`` (OpenFWI's own scheme,
    ``seisinv.physics.openfwi_scheme`` with a ``config.sponge_width`` border, in the velocity's
    precision).

    Raises:
        ConfigError: ``openfwi`` on a survey whose cells are not square.
    """
    if config.physics == "deepwave":
        return physics_forward(inversion_survey(survey, config), device)
    if survey.dz != survey.dx:
        raise ConfigError(
            f"physics 'openfwi': OpenFWI's scheme needs square cells, survey {survey.name!r} "
            f"has dz={survey.dz} m, dx={survey.dx} m; use physics deepwave", "physics"
        )
    from seisinv.physics import openfwi_scheme

    def forward(velocity: torch.Tensor, shots: Sequence[int] | None) -> torch.Tensor:
        velocity = velocity.to(device)
        if velocity.dtype not in (torch.float32, torch.float64):
            velocity = velocity.float()
        return openfwi_scheme(velocity, survey, shots=shots, nbc=config.sponge_width)

    return forward


# Adam divides each cell's gradient by its own running RMS, which moves cells the data barely
# constrain as far as the best-constrained ones. Scaling each sample's gradient to a unit robust
# maximum (``_unit_scale``) and using an eps of that order keeps Adam's momentum and per-cell
# adaptivity where the gradient is strong, and makes weakly illuminated cells move proportionally
# less (SGD-like) instead of by the full step.
ADAM_EPS = 0.1


def _unit_scale(grad: torch.Tensor) -> torch.Tensor:
    """Divide each sample's ``(batch, nz, nx)`` gradient by its 98th percentile of ``|grad|``."""
    scale = torch.quantile(grad.abs().flatten(1).float(), 0.98, dim=1).to(grad.dtype)
    scale = scale.clamp_min(torch.finfo(grad.dtype).tiny)
    return grad / scale.reshape(-1, *([1] * (grad.dim() - 1)))


def default_mask_rows(survey: Survey) -> int:
    """Rows down to and including the source row, where the source singularity dominates."""
    return int(survey.source_cells[0, 0]) + 1


def _check_inputs(observed: torch.Tensor, initial: torch.Tensor, survey: Survey,
                  config: FwiConfig) -> None:
    if observed.dim() != 4 or tuple(observed.shape[1:]) != survey.gather_shape:
        raise DataError(
            f"observed gathers: shape {tuple(observed.shape)}, expected (batch, "
            f"{', '.join(map(str, survey.gather_shape))}) (batch, shots, time, receivers) "
            f"for survey {survey.name!r}"
        )
    if initial.shape != (observed.shape[0], *survey.velocity_shape):
        raise DataError(
            f"initial velocity: shape {tuple(initial.shape)}, expected ({observed.shape[0]}, "
            f"{survey.nz}, {survey.nx}) (batch, nz, nx) for survey {survey.name!r}"
        )
    if not torch.isfinite(observed).all() or not torch.isfinite(initial).all():
        raise DataError("observed gathers or initial velocity contain NaN or inf")


def invert(observed: np.ndarray | torch.Tensor, initial: np.ndarray | torch.Tensor,
           survey: Survey, config: FwiConfig, *, true_velocity: np.ndarray | None = None,
           forward: Forward | None = None,
           on_iteration: Callable[[int, np.ndarray], None] | None = None,
           families: Sequence[str | None] | None = None,
           informative_start: bool = True,
           classifier: str | torch.nn.Module | None = None) -> FwiResult:
    """Full-waveform inversion of a batch of samples sharing one survey.

    Args:
        observed: ``(batch, shots, time, receivers)`` observed gathers (survey amplitude
            convention). Adam: their dtype sets the computation's (float32 or float64);
            L-BFGS: ``config.precision`` does.
        initial: ``(batch, nz, nx)`` starting velocity in survey units, depth first.
        survey: the acquisition (grid, time axis, velocity bounds).
        config: the inversion settings.
        true_velocity: optional ``(batch, nz, nx)`` truth, only to record the model error.
        forward: optional forward model (default: ``seisinv.physics.simulate``).
        on_iteration: called after each iteration (L-BFGS: each batched evaluation) with its
            index and the ``(batch,)`` misfit.
        families: optional velocity family per sample (``prior auto`` uses it when given).
        informative_start: False when ``initial`` is a generic start (smooth, gradient) rather
            than a prediction (``seisinv.fwi.priors.choose_prior``).
        classifier: a family-classifier run directory or loaded model naming each sample's
            family from its start (default ``config.classifier``); it overrides ``families``.

    Returns:
        An ``FwiResult``; the velocity stays inside ``[survey.vmin, survey.vmax]``.
    """
    from seisinv.runtime import resolve_device

    started = time.perf_counter()
    device = resolve_device(config.device)
    obs = torch.as_tensor(observed).to(device)
    dtype = obs.dtype if obs.dtype in (torch.float32, torch.float64) else torch.float32
    if config.optimizer == "lbfgs":
        dtype = torch.float32 if config.precision == "float32" else torch.float64
    obs = obs.to(dtype)
    start = torch.as_tensor(initial).to(device=device, dtype=dtype)
    _check_inputs(obs, start, survey, config)
    if forward is None:
        forward = fwi_forward(survey, config, device)
    misfit_fn = MISFITS.get(config.misfit)
    regularizer = REGULARIZERS.get(config.regularization)
    mask_rows = config.mask_rows if config.mask_rows is not None else default_mask_rows(survey)
    if config.optimizer == "lbfgs":
        from seisinv.fwi.family import sample_families
        from seisinv.fwi.quasi_newton import invert_lbfgs

        truth = None if true_velocity is None else torch.as_tensor(true_velocity).to(device, dtype)
        families, sources = sample_families(
            start, families, classifier if classifier is not None else config.classifier)
        fields = invert_lbfgs(obs, start, survey, config, forward, mask_rows=mask_rows,
                              truth=truth, families=families, family_sources=sources,
                              informative_start=informative_start, on_iteration=on_iteration)
        fields["wall_s"] = time.perf_counter() - started
        return FwiResult(**fields)
    mask_rows = -(-mask_rows // config.model_coarsen)  # rows of the (possibly coarser) model grid
    truth = None if true_velocity is None else torch.as_tensor(true_velocity).to(device, dtype)
    generator = torch.Generator().manual_seed(config.seed)
    span = survey.vmax - survey.vmin

    model = BoundedModel(start, survey.vmin, survey.vmax, config.model_coarsen,
                         config.bound_margin).to(device)
    # The start as the model represents it (dimensionless), for the pull toward it.
    prior = model().detach() / span if config.prior_weight > 0 else None
    misfits: list[np.ndarray] = []
    bands: list[float] = []
    maes: list[np.ndarray] = []
    last_filter: torch.Tensor | None = None

    gain = (torch.arange(survey.nt, device=device, dtype=dtype) / (survey.nt - 1)) ** config.time_gain
    gain = gain.reshape(survey.nt, 1)  # broadcast over (..., time, receivers)

    def data_misfit(velocity: torch.Tensor, corner: float, shots: list[int] | None,
                    observed_band: torch.Tensor) -> torch.Tensor:
        nonlocal last_filter
        simulated = lowpass(forward(velocity, shots).to(dtype), survey.dt, corner,
                            config.filter_order)
        if config.estimate_wavelet:
            last_filter = wiener_filter(observed_band, simulated)
            simulated = apply_filter(simulated, last_filter)
        if config.time_gain:
            return misfit_fn(simulated * gain, observed_band * gain)
        return misfit_fn(simulated, observed_band)

    def full_misfit() -> torch.Tensor:
        with torch.no_grad():
            return data_misfit(model(), 0.0, None, obs)

    misfit_start = full_misfit()
    # Adam keeps its moments across bands: restarted, its first bias-corrected step moves every
    # cell by the full step size and throws the misfit back up at each band change.
    adam = torch.optim.Adam(model.parameters(), lr=config.lr, eps=ADAM_EPS)
    for corner, n_iters in config.stages():
        observed_band = lowpass(obs, survey.dt, corner, config.filter_order)
        optimizer = adam
        # Each stage's misfit is divided by its starting value, so gradients are O(1) whatever
        # the data's amplitude (Adam's eps and L-BFGS's first step assume that scale).
        stage_scale: torch.Tensor | None = None
        for _ in range(n_iters):
            shots = None
            if config.shots_per_iter is not None and config.shots_per_iter < survey.n_shots:
                shots = sorted(torch.randperm(survey.n_shots, generator=generator)
                               [: config.shots_per_iter].tolist())
            obs_iter = observed_band if shots is None else observed_band[:, shots]
            record: list[torch.Tensor] = []

            def closure(shots=shots, obs_iter=obs_iter, corner=corner, record=record):
                nonlocal stage_scale
                model.zero_grad()
                velocity = model()
                per_sample = data_misfit(velocity, corner, shots, obs_iter)
                if stage_scale is None:
                    stage_scale = 1.0 / per_sample.detach().clamp_min(torch.finfo(dtype).tiny)
                loss = (per_sample * stage_scale).sum()
                if config.regularization != "none" and config.reg_weight > 0:
                    loss = loss + config.reg_weight * regularizer(velocity / span).sum()
                if config.prior_weight > 0:
                    loss = loss + config.prior_weight * prior_penalty(velocity / span, prior).sum()
                loss.backward()
                grad = precondition_gradient(model.p.grad, config.smooth_sigma,
                                             config.depth_power, mask_rows)
                model.p.grad = _unit_scale(grad)
                if not record:
                    record.append(per_sample.detach())
                return loss

            if truth is not None:
                maes.append((model().detach() - truth).abs().flatten(1).mean(1).cpu().numpy())
            optimizer.step(closure)
            misfits.append(record[0].cpu().numpy())
            bands.append(corner)
            if on_iteration is not None:
                on_iteration(len(misfits) - 1, misfits[-1])

    velocity = model().detach()
    if truth is not None:
        maes.append((velocity - truth).abs().flatten(1).mean(1).cpu().numpy())
    misfit_end = full_misfit()
    return FwiResult(
        velocity=velocity.cpu().float().numpy(),
        misfit=np.stack(misfits, axis=1),
        band_hz=np.asarray(bands, dtype=np.float64),
        misfit_start=misfit_start.cpu().numpy(),
        misfit_end=misfit_end.cpu().numpy(),
        model_mae=None if truth is None else np.stack(maes, axis=1),
        wavelet_filter=None if last_filter is None else last_filter.cpu().numpy(),
        wall_s=time.perf_counter() - started,
    )
