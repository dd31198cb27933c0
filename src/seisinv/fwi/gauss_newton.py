"""Gauss-Newton steps for priors with few unknowns (``tv1d``: one per depth row).

For a parametrisation with ``k`` unknowns the Jacobian of the residual ``r(theta)`` (weighted so
that the data misfit is ``0.5 |r|^2``) is built column by column with one-sided finite
differences of the forward model in float64: ``k + 1`` forward simulations and no adjoint, all
samples and columns batched into a few simulate calls. The step solves the Levenberg-Marquardt
system ``(J^T J + H_p + mu diag(J^T J + H_p)) d = -(J^T r + g_p)`` with the prior's exact gradient
``g_p`` and Hessian ``H_p`` (autograd) for a ladder of damping factors ``mu`` (1e-3 ... 10), all
tried in one batched simulation; each sample takes the step that lowers its objective most.

Measured (benchmarks/fwi_priors.py --costs, one OpenFWI sample, float64, CPU): a forward
simulation costs ~0.36 of a gradient and a deepwave Born forward ~1.3 gradients, so a
Jacobian of ``k = 70`` columns costs ~25 gradients by finite differences against ~90 by Born
columns; for thousands of unknowns (``gp``, ``tv2d``) neither pays against L-BFGS on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# residual(theta (a, k), sample (a,)) -> (a, m) weighted residual of those samples' data,
# 0.5 |r|^2 = data misfit
Residual = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# penalty(theta (a, k)) -> (a,)
Penalty = Callable[[torch.Tensor], torch.Tensor]


def _penalty_derivatives(penalty: Penalty, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient ``(a, k)`` and Hessian ``(a, k, k)`` of a per-sample penalty."""
    grads, hessians = [], []
    for b in range(theta.shape[0]):
        def single(t: torch.Tensor, b=b) -> torch.Tensor:
            return penalty(t.unsqueeze(0))[0]

        t = theta[b].detach()
        grads.append(torch.func.grad(single)(t))
        hessians.append(torch.func.hessian(single)(t))
    return torch.stack(grads), torch.stack(hessians)


def jacobian_fd(residual: Residual, theta: torch.Tensor, sample: torch.Tensor, r0: torch.Tensor,
                step: float, chunk: int) -> torch.Tensor:
    """``(a, m, k)`` one-sided finite-difference Jacobian of ``residual`` at ``theta``."""
    a, k = theta.shape
    eye = torch.eye(k, dtype=theta.dtype, device=theta.device) * step
    probes = (theta.unsqueeze(1) + eye.unsqueeze(0)).reshape(a * k, k)  # sample-major
    owners = sample.repeat_interleave(k)
    columns = []
    for first in range(0, a * k, chunk):
        columns.append(residual(probes[first:first + chunk], owners[first:first + chunk]))
    perturbed = torch.cat(columns).reshape(a, k, -1)
    return ((perturbed - r0.unsqueeze(1)) / step).transpose(1, 2)


def gauss_newton(residual: Residual, penalty: Penalty, theta0: torch.Tensor, steps: int, *,
                 fd_step: float = 1e-6,
                 damping_ladder: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0),
                 chunk: int = 64,
                 tol_change: float = 1e-3) -> tuple[torch.Tensor, list[list[float]]]:
    """Damped Gauss-Newton on ``0.5 |residual|^2 + penalty``, samples batched.

    Args:
        residual: ``(theta (a, k), sample (a,)) -> (a, m)``: the residual of parameter vectors
            (samples or finite-difference probes) against the data of ``sample``.
        penalty: ``(a, k) -> (a,)`` the prior's penalty.
        theta0: ``(batch, k)`` start, float64.
        steps: Gauss-Newton iterations.
        fd_step: finite-difference step in parameter units.
        damping_ladder: Levenberg-Marquardt factors ``mu`` (on the diagonal) tried per step.
        chunk: parameter vectors per simulate call.
        tol_change: a sample stops once a step lowers its objective by less than this fraction.

    Returns:
        ``(theta (batch, k), objective history per sample)``.
    """
    theta = theta0.detach().clone()
    everyone = torch.arange(theta.shape[0], device=theta.device)
    with torch.no_grad():
        r = residual(theta, everyone)
        f = 0.5 * r.pow(2).sum(1) + penalty(theta)
    history = [[float(v)] for v in f]
    active = torch.ones(theta.shape[0], dtype=torch.bool)
    for _ in range(steps):
        idx = torch.nonzero(active).flatten()
        if idx.numel() == 0:
            break
        with torch.no_grad():
            jac = jacobian_fd(residual, theta[idx], idx, r[idx], fd_step, chunk)
        gp, hp = _penalty_derivatives(penalty, theta[idx])
        jtj = jac.transpose(1, 2) @ jac
        hessian = jtj + hp
        gradient = (jac.transpose(1, 2) @ r[idx].unsqueeze(-1)).squeeze(-1) + gp
        diag = torch.diagonal(hessian, dim1=1, dim2=2).clamp_min(1e-30)
        # Levenberg-Marquardt: the damped systems for several mu are cheap (k x k); their steps
        # are tried together in one batched simulation and each sample keeps its best one. A
        # large mu is a short gradient step, a small one the full Gauss-Newton step.
        trials = []
        for mu in damping_ladder:
            system = hessian + mu * torch.diag_embed(diag)
            direction = -torch.linalg.solve(system, gradient.unsqueeze(-1)).squeeze(-1)
            trials.append(theta[idx] + direction)
        trial = torch.stack(trials, dim=1)  # (a, n_mu, k)
        flat = trial.reshape(-1, trial.shape[-1])
        owner = idx.repeat_interleave(len(damping_ladder))
        with torch.no_grad():
            r_all = torch.cat([residual(flat[i:i + chunk], owner[i:i + chunk])
                               for i in range(0, flat.shape[0], chunk)])
            f_all = 0.5 * r_all.pow(2).sum(1) + penalty(flat)
        f_all = f_all.reshape(idx.numel(), len(damping_ladder))
        r_all = r_all.reshape(idx.numel(), len(damping_ladder), -1)
        best = torch.argmin(f_all, dim=1)
        for w, b in enumerate(idx.tolist()):
            f_new = float(f_all[w, best[w]])
            if not f_new < float(f[b]):
                active[b] = False  # no damping gives a decrease: converged or stuck
                continue
            if float(f[b]) - f_new <= tol_change * float(f[b]):
                active[b] = False  # converged: the step gained almost nothing
            theta[b] = trial[w, best[w]]
            r[b] = r_all[w, best[w]]
            f[b] = f_new
        for b in range(theta.shape[0]):
            history[b].append(float(f[b]))
    return theta, history
