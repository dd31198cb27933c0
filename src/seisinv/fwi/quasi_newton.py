"""FWI by L-BFGS with a prior: ``min_theta  misfit(simulate(v(theta)), observed) + prior(theta)``.

Per sample the prior (``seisinv.fwi.priors``) is chosen (``--prior auto``) or given; samples that
share a prior are optimised together by ``seisinv.fwi.lbfgs.minimize`` (one batched simulation
per evaluation, a line search per sample). The model is ``v = vmin + (vmax - vmin) clamp(u, 0, 1)``
with ``u`` the prior's model in range units; the arithmetic is float64 unless
``precision`` says otherwise (``mixed``: float32 wave simulation inside a float64 objective
and optimiser). Each band (``bands``) is one or more L-BFGS runs (``rounds``), each
restarting the curvature history and re-scaling every sample's objective to 1 at its start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from seisinv.fwi.config import FwiConfig
from seisinv.fwi.gauss_newton import gauss_newton
from seisinv.fwi.lbfgs import LbfgsSettings, minimize
from seisinv.fwi.priors import PriorSettings, build_prior, choose_prior, prior_weight
from seisinv.fwi.signal import lowpass
from seisinv.physics.misfit import MISFITS
from seisinv.survey import Survey

log = logging.getLogger(__name__)


def prior_choices(start: torch.Tensor, config: FwiConfig,
                  families: Sequence[str | None] | None = None,
                  informative_start: bool = True,
                  sources: Sequence[str | None] | None = None) -> list[tuple[str, str]]:
    """``(prior, reason)`` per sample of a ``(batch, nz, nx)`` start (see ``choose_prior``);
    ``sources`` (e.g. ``"classifier"``) is added to a reason that names the family."""
    families = list(families) if families is not None else [None] * start.shape[0]
    sources = list(sources) if sources is not None else [None] * start.shape[0]
    if config.prior != "auto":
        return [(config.prior, "set by prior")] * start.shape[0]
    choices = []
    for b in range(start.shape[0]):
        name, reason = choose_prior(start[b], families[b], informative_start)
        if sources[b] and reason.startswith("family"):
            reason = f"{reason} (from the {sources[b]} {families[b]})"
        choices.append((name, reason))
    return choices


def prior_settings(config: FwiConfig, name: str, family: str | None) -> PriorSettings:
    """The ``PriorSettings`` of prior ``name`` for a sample of ``family``."""
    return PriorSettings(
        weight=prior_weight(name, family, config.prior_strength),
        tv_epsilon=config.tv_epsilon,
        tv_isotropic=config.tv_isotropic,
        gp_modes=config.gp_modes,
        gp_length=config.gp_length,
        gp_sigma=config.gp_sigma,
    )


def invert_lbfgs(obs: torch.Tensor, start: torch.Tensor, survey: Survey, config: FwiConfig,
                 forward: Callable, *, mask_rows: int, truth: torch.Tensor | None = None,
                 families: Sequence[str | None] | None = None,
                 family_sources: Sequence[str | None] | None = None,
                 informative_start: bool = True,
                 on_iteration: Callable[[int, np.ndarray], None] | None = None) -> dict:
    """Run the L-BFGS inversion of a batch; returns the fields of an ``FwiResult``.

    Args:
        obs: ``(batch, shots, nt, receivers)`` observed gathers (dtype = working precision).
        start: ``(batch, nz, nx)`` start in survey units, same dtype and device.
        survey: grid and velocity range.
        config: settings (``optimizer == "lbfgs"``).
        forward: ``(velocity (a, nz, nx), shots) -> gathers`` in the working precision.
        mask_rows: top rows held at the start.
        truth: optional ``(batch, nz, nx)`` true model, only to record the model error.
        families: optional family per sample (for ``prior auto`` and the weights).
        family_sources: where each family came from (``"classifier"``, ``"label"``, None).
        informative_start: False for a generic (smooth, gradient) start (``choose_prior``).
        on_iteration: called once per L-BFGS round of evaluations with its index and the
            current ``(batch,)`` data misfit (progress).
    """
    started = time.perf_counter()
    batch = start.shape[0]
    families = list(families) if families is not None else [None] * batch
    span = survey.vmax - survey.vmin
    start_u = (start - survey.vmin) / span
    misfit_fn = MISFITS.get(config.misfit)
    choices = prior_choices(start, config, families, informative_start, family_sources)
    for b, (name, reason) in enumerate(choices):
        log.info("fwi sample %d: prior %s (%s)", b, name, reason)
    gain = None
    if config.time_gain:
        gain = (torch.arange(survey.nt, device=obs.device, dtype=obs.dtype) / (survey.nt - 1))
        gain = (gain**config.time_gain).reshape(survey.nt, 1)
    rows = torch.arange(survey.nz, device=obs.device).reshape(1, -1, 1)
    # The L-BFGS objective's simulation: float32 under ``mixed`` (differentiable casts), while
    # Gauss-Newton's finite differences (steps of 1e-6) keep the float64 ``forward``.
    def simulate_objective(velocity: torch.Tensor, shots) -> torch.Tensor:
        if config.precision == "mixed":
            return forward(velocity.float(), shots).to(velocity.dtype)
        return forward(velocity, shots)

    def in_band(gathers: torch.Tensor, corner: float) -> torch.Tensor:
        """Gathers low-passed at ``corner`` and time-gained, as every misfit here sees them."""
        band = lowpass(gathers, survey.dt, corner, config.filter_order)
        return band * gain if gain is not None else band

    def unit_model(prior, theta: torch.Tensor, idx: torch.Tensor, fixed: torch.Tensor):
        """The prior's map in [0, 1] units with the masked top rows held at the start."""
        u = prior.model(theta, idx)
        return torch.where(rows < mask_rows, fixed[idx], u) if mask_rows > 0 else u

    # Per-sample records over all stages, padded per stage to the stage's iteration budget.
    misfit_rec: list[list[float]] = [[] for _ in range(batch)]
    mae_rec: list[list[float]] = [[] for _ in range(batch)]
    band_rec: list[float] = []
    stops: list[list[str]] = [[] for _ in range(batch)]
    iterations = [0] * batch
    evaluations = [0] * batch
    current_u = start_u.clone()
    current_misfit = np.full(batch, np.nan)
    progress = [0]

    groups: dict[tuple[str, float], list[int]] = {}
    for b, (name, _) in enumerate(choices):
        settings = prior_settings(config, name, families[b])
        groups.setdefault((name, settings.weight), []).append(b)

    for corner, stage_iters in config.stages():
        observed_band = in_band(obs, corner)
        per_round = [stage_iters // config.rounds + (r < stage_iters % config.rounds)
                     for r in range(config.rounds)]
        for round_iters in [n for n in per_round if n > 0]:
            for (name, _), members in groups.items():
                index = torch.as_tensor(members, device=obs.device)
                prior = build_prior(name, current_u[index],
                                    prior_settings(config, name, families[members[0]]))
                fixed = start_u[index]
                group_truth = None if truth is None else truth[index]

                def objective(theta: torch.Tensor, idx: torch.Tensor, prior=prior, fixed=fixed,
                              group_truth=group_truth, members=members, corner=corner,
                              observed_band=observed_band) -> tuple:
                    theta = theta.detach().requires_grad_(True)
                    u = unit_model(prior, theta, idx, fixed)
                    velocity = survey.vmin + span * u.clamp(0.0, 1.0)
                    simulated = in_band(simulate_objective(velocity, None).to(obs.dtype), corner)
                    observed_idx = observed_band[torch.as_tensor(members, device=obs.device)[idx]]
                    data = misfit_fn(simulated, observed_idx)
                    total = data + prior.penalty(theta)
                    (grad,) = torch.autograd.grad(total.sum(), theta)
                    extra = [data.detach()]
                    if group_truth is not None:
                        mae = (velocity.detach() - group_truth[idx]).abs().flatten(1).mean(1)
                        extra.append(mae)
                    return total.detach(), grad, torch.stack(extra, dim=1)

                def on_round(_: int, active: list[int]) -> None:
                    progress[0] += 1
                    if on_iteration is not None:
                        on_iteration(progress[0] - 1, current_misfit)

                result = minimize(objective, prior.theta0.detach(), LbfgsSettings(
                    max_iter=round_iters, history=config.history, tol_change=config.tol_change),
                    on_round=on_round)
                with torch.no_grad():
                    final_u = unit_model(prior, result.x,
                                         torch.arange(len(members), device=obs.device), fixed)
                    current_u[index] = final_u.clamp(0.0, 1.0)
                for k, b in enumerate(members):
                    extras = result.extras[k]
                    # records at the start of each iteration, padded with the last value
                    seq = (extras[:round_iters] + [extras[-1]] * round_iters)[:round_iters]
                    misfit_rec[b].extend(e[0] for e in seq)
                    if truth is not None:
                        mae_rec[b].extend(e[1] for e in seq)
                    current_misfit[b] = extras[-1][0]
                    iterations[b] += result.iterations[k]
                    evaluations[b] += result.evaluations[k]
                    stops[b].append(result.stop[k])
            band_rec.extend([corner] * round_iters)

    if config.gauss_newton > 0 and config.misfit == "l2":
        corner = config.stages()[-1][0]
        observed_band = in_band(obs, corner)
        energy = observed_band.flatten(1).pow(2).sum(1).clamp_min(torch.finfo(obs.dtype).tiny)
        steps = config.gauss_newton
        ran = False
        for (name, _), members in groups.items():
            index = torch.as_tensor(members, device=obs.device)
            prior = build_prior(name, current_u[index],
                                prior_settings(config, name, families[members[0]]))
            if prior.theta0.shape[1] > config.gn_max_unknowns:
                continue
            ran = True
            fixed = start_u[index]
            counter = [0] * len(members)

            def residual(theta: torch.Tensor, sample: torch.Tensor, prior=prior, fixed=fixed,
                         index=index, corner=corner, observed_band=observed_band,
                         counter=counter) -> torch.Tensor:
                u = unit_model(prior, theta, sample, fixed)
                velocity = survey.vmin + span * u.clamp(0.0, 1.0)
                simulated = in_band(forward(velocity, None).to(obs.dtype), corner)
                owner = index[sample]
                for s_ in sample.tolist():
                    counter[s_] += 1
                return ((simulated - observed_band[owner])
                        / energy[owner].sqrt().reshape(-1, 1, 1, 1)).flatten(1)

            theta, objective_history = gauss_newton(
                residual, prior.penalty, prior.theta0.detach(), steps,
                chunk=max(1, 64 // survey.n_shots))
            with torch.no_grad():
                final_u = unit_model(prior, theta, torch.arange(len(members), device=obs.device),
                                     fixed)
                current_u[index] = final_u.clamp(0.0, 1.0)
            for k, b in enumerate(members):
                history = objective_history[k]
                # the objective (misfit + prior) at the start of each Gauss-Newton step
                misfit_rec[b].extend(history[:steps])
                if truth is not None:
                    mae_rec[b].extend([mae_rec[b][-1] if mae_rec[b] else float("nan")] * steps)
                evaluations[b] += counter[k]
                iterations[b] += len(history) - 1
                stops[b].append(f"gauss_newton {len(history) - 1}/{steps}")
        if ran:
            for b in range(batch):  # samples without Gauss-Newton keep their last record
                missing = len(band_rec) + steps - len(misfit_rec[b])
                misfit_rec[b].extend([misfit_rec[b][-1]] * missing)
                if truth is not None:
                    mae_rec[b].extend([mae_rec[b][-1]] * missing)
            band_rec.extend([corner] * steps)

    velocity = survey.vmin + span * current_u
    with torch.no_grad():
        misfit_start = misfit_fn(forward(start, None).to(obs.dtype), obs)
        misfit_end = misfit_fn(forward(velocity, None).to(obs.dtype), obs)
    model_mae = None
    if truth is not None:
        final_mae = (velocity - truth).abs().flatten(1).mean(1).cpu().numpy()
        model_mae = np.stack([np.asarray(m + [final_mae[b]]) for b, m in enumerate(mae_rec)])
    return {
        "velocity": velocity.cpu().float().numpy(),
        "misfit": np.asarray(misfit_rec, dtype=np.float64),
        "band_hz": np.asarray(band_rec, dtype=np.float64),
        "misfit_start": misfit_start.cpu().numpy(),
        "misfit_end": misfit_end.cpu().numpy(),
        "model_mae": model_mae,
        "wavelet_filter": None,
        "wall_s": time.perf_counter() - started,
        "prior": [name for name, _ in choices],
        "prior_reason": [reason for _, reason in choices],
        "stop": stops,
        "iterations": iterations,
        "evaluations": evaluations,
        "family": families,
        "family_source": list(family_sources) if family_sources is not None else [None] * batch,
    }
