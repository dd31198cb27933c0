"""Batched L-BFGS with a strong-Wolfe line search per sample, in lock-step.

Each sample of a batch is an independent problem ``min f_b(x_b)``. Every sample keeps its own
curvature history, search direction and line-search state; one call of the objective evaluates
every still-active sample at its own trial point (one batched wave simulation), so a sample
whose line search needs several trials never holds the others back, and a converged sample
leaves the batch (the batch shrinks). With a batch of one this is plain L-BFGS.

The line search is Nocedal & Wright's (Numerical Optimization, 2nd ed., algorithms 3.5 and 3.6:
bracketing, then zoom with safeguarded cubic interpolation); the direction is the two-loop
recursion with the initial scaling ``s.y / y.y`` (eq. 7.20).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

# objective(x (a, n), active sample indices (a,)) -> (f (a,), grad (a, n), extra (a, m))
# ``extra`` holds per-sample quantities to record with each accepted iterate (the data misfit,
# the model error, ...).
Objective = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


@dataclass
class LbfgsSettings:
    """Settings of ``minimize``.

    Attributes:
        max_iter: accepted iterations per sample.
        max_evals: objective evaluations per sample (None: ``2 * max_iter + 5``).
        history: curvature pairs kept.
        c1, c2: sufficient-decrease and curvature constants of the strong Wolfe conditions.
        max_search: evaluations per line search before it gives up.
        tol_grad: stop when ``max |grad| <= tol_grad * max |grad at start|``.
        tol_change: stop when the objective fell by less than ``tol_change * |f|`` over the last
            ``window`` iterations.
        window: iterations of the ``tol_change`` test.
    """

    max_iter: int = 50
    max_evals: int | None = None
    history: int = 10
    c1: float = 1e-4
    c2: float = 0.9
    max_search: int = 12
    tol_grad: float = 1e-8
    tol_change: float = 1e-6
    window: int = 5


@dataclass
class _Sample:
    """Optimiser state of one sample (internal)."""

    x: torch.Tensor
    f: float = math.nan
    g: torch.Tensor | None = None
    scale: float = 1.0  # 1 / |f(x0)|: each sample's objective starts at 1
    g0_max: float = 1.0
    d: torch.Tensor | None = None
    gd0: float = 0.0
    s_hist: list = field(default_factory=list)
    y_hist: list = field(default_factory=list)
    # line search
    phase: str = "start"
    t: float = 0.0
    t_prev: float = 0.0
    f_prev: float = 0.0
    gd_prev: float = 0.0
    g_prev: torch.Tensor | None = None
    extra_prev: list | None = None
    lo_extra: list | None = None
    lo: tuple | None = None  # (t, f, gd, g)
    hi: tuple | None = None
    search_evals: int = 0
    iterations: int = 0
    evals: int = 0
    history_f: list = field(default_factory=list)
    extras: list = field(default_factory=list)
    done: str = ""


@dataclass(frozen=True)
class LbfgsResult:
    """What ``minimize`` returns.

    Attributes:
        x: ``(batch, n)`` final iterates.
        f: ``(batch,)`` final objective, divided by its starting value.
        objective: per sample, the normalised objective at the start and after every accepted
            iteration.
        extras: per sample, ``extra`` (a list of m floats) at the start and after every accepted
            iteration.
        iterations, evaluations: ``(batch,)`` accepted iterations and objective evaluations.
        stop: per sample why it stopped ("max_iter", "max_evals", "tol_grad", "tol_change",
            "line_search").
    """

    x: torch.Tensor
    f: torch.Tensor
    objective: list[list[float]]
    extras: list[list[list[float]]]
    iterations: list[int]
    evaluations: list[int]
    stop: list[str]


def _cubic_minimum(t1: float, f1: float, g1: float, t2: float, f2: float, g2: float,
                   lo: float, hi: float) -> float:
    """Minimiser of the cubic through two points with slopes, clipped to ``[lo, hi]``."""
    d1 = g1 + g2 - 3 * (f1 - f2) / (t1 - t2)
    square = d1 * d1 - g1 * g2
    if square >= 0 and math.isfinite(square):
        d2 = math.copysign(math.sqrt(square), t2 - t1)
        denominator = g2 - g1 + 2 * d2
        if denominator != 0:
            t = t2 - (t2 - t1) * (g2 + d2 - d1) / denominator
            if math.isfinite(t):
                return min(max(t, lo), hi)
    return 0.5 * (lo + hi)


def _direction(state: _Sample) -> torch.Tensor:
    """Two-loop recursion: ``-H g`` from the stored curvature pairs."""
    q = -state.g.clone()
    if not state.s_hist:
        return q
    alphas = []
    for s, y in zip(reversed(state.s_hist), reversed(state.y_hist), strict=True):
        rho = 1.0 / float(y @ s)
        alpha = rho * float(s @ q)
        alphas.append((alpha, rho))
        q -= alpha * y
    s, y = state.s_hist[-1], state.y_hist[-1]
    q *= float(s @ y) / float(y @ y)
    for (alpha, rho), s, y in zip(reversed(alphas), state.s_hist, state.y_hist, strict=True):
        beta = rho * float(y @ q)
        q += (alpha - beta) * s
    return q


def _new_search(state: _Sample) -> None:
    """Start a line search from the current iterate along a fresh direction."""
    state.d = _direction(state)
    state.gd0 = float(state.g @ state.d)
    if state.gd0 >= 0:  # not a descent direction (can happen after a bad pair): reset
        state.s_hist.clear()
        state.y_hist.clear()
        state.d = -state.g.clone()
        state.gd0 = float(state.g @ state.d)
    if state.s_hist:
        state.t = 1.0
    else:  # steepest descent: a first step whose largest change is 1 % of the largest entry
        scale = max(float(state.x.abs().max()), 1.0)
        state.t = 0.01 * scale / max(float(state.d.abs().max()), 1e-300)
    state.t_prev, state.f_prev, state.gd_prev, state.g_prev = 0.0, state.f, state.gd0, state.g
    state.extra_prev = state.extras[-1]
    state.lo = state.hi = None
    state.phase = "bracket"
    state.search_evals = 0


def _accept(state: _Sample, t: float, f: float, g: torch.Tensor, extra: list,
            settings: LbfgsSettings) -> None:
    s = t * state.d
    y = g - state.g
    sy = float(s @ y)
    if sy > 1e-10 * float(s.norm()) * float(y.norm()):
        state.s_hist.append(s)
        state.y_hist.append(y)
        if len(state.s_hist) > settings.history:
            state.s_hist.pop(0)
            state.y_hist.pop(0)
    state.x = state.x + s
    state.f, state.g = f, g
    state.iterations += 1
    state.history_f.append(f)
    state.extras.append(extra)
    if state.iterations >= settings.max_iter:
        state.done = "max_iter"
    elif float(g.abs().max()) <= settings.tol_grad * state.g0_max:
        state.done = "tol_grad"
    elif (len(state.history_f) > settings.window
          and state.history_f[-1 - settings.window] - f <= settings.tol_change * abs(f)):
        state.done = "tol_change"
    else:
        _new_search(state)


def _search_failed(state: _Sample) -> None:
    if state.s_hist:  # retry once along steepest descent
        state.s_hist.clear()
        state.y_hist.clear()
        _new_search(state)
    else:
        state.done = "line_search"


def _update(state: _Sample, f: float, g: torch.Tensor, extra: list,
            settings: LbfgsSettings) -> None:
    """Advance the sample's line search with the objective at its trial step ``state.t``."""
    t = state.t
    gd = float(g @ state.d)
    state.search_evals += 1
    armijo = f <= state.f + settings.c1 * t * state.gd0
    curvature = abs(gd) <= -settings.c2 * state.gd0
    if state.phase == "bracket":
        if not armijo or (state.search_evals > 1 and f >= state.f_prev):
            state.lo = (state.t_prev, state.f_prev, state.gd_prev, state.g_prev)
            state.lo_extra = state.extra_prev
            state.hi = (t, f, gd, g)
            state.phase = "zoom"
        elif curvature:
            _accept(state, t, f, g, extra, settings)
            return
        elif gd >= 0:
            state.lo = (t, f, gd, g)
            state.hi = (state.t_prev, state.f_prev, state.gd_prev, state.g_prev)
            state.lo_extra = extra
            state.phase = "zoom"
        else:
            # Still descending steeply: extrapolate (cubic through the last two trials, between
            # 1.1 and 10 times the current step).
            new_t = _cubic_minimum(state.t_prev, state.f_prev, state.gd_prev, t, f, gd,
                                   1.1 * t, 10.0 * t)
            state.t_prev, state.f_prev, state.gd_prev, state.g_prev = t, f, gd, g
            state.extra_prev = extra
            state.t = new_t
    else:  # zoom
        t_lo, f_lo = state.lo[0], state.lo[1]
        if not armijo or f >= f_lo:
            state.hi = (t, f, gd, g)
        else:
            if curvature:
                _accept(state, t, f, g, extra, settings)
                return
            if gd * (state.hi[0] - t_lo) >= 0:
                state.hi = state.lo
            state.lo = (t, f, gd, g)
            state.lo_extra = extra
    if state.phase == "zoom":
        (t_lo, f_lo, gd_lo, _), (t_hi, f_hi, gd_hi, _) = state.lo, state.hi
        width = abs(t_hi - t_lo)
        tiny = width * float(state.d.abs().max()) < 1e-12 * max(float(state.x.abs().max()), 1.0)
        if state.search_evals >= settings.max_search or tiny:
            if t_lo > 0:  # sufficient decrease holds at lo: take it without the curvature test
                _accept(state, t_lo, f_lo, state.lo[3], state.lo_extra, settings)
            else:
                _search_failed(state)
            return
        a, b = min(t_lo, t_hi), max(t_lo, t_hi)
        state.t = _cubic_minimum(t_lo, f_lo, gd_lo, t_hi, f_hi, gd_hi, a + 0.1 * width,
                                 b - 0.1 * width)
    elif state.search_evals >= settings.max_search:
        _search_failed(state)


def minimize(objective: Objective, x0: torch.Tensor, settings: LbfgsSettings,
             on_round: Callable[[int, list[int]], None] | None = None) -> LbfgsResult:
    """Minimise ``batch`` independent objectives with L-BFGS, all samples in lock-step.

    Args:
        objective: ``(x (a, n), idx (a,)) -> (f (a,), grad (a, n), extra (a, m))`` for the active
            samples ``idx`` (indices into the batch) at their trial points ``x``.
        x0: ``(batch, n)`` starting points (float64 recommended).
        settings: iteration limits and tolerances.
        on_round: called after each batched evaluation with its index and the active samples.

    Returns:
        An ``LbfgsResult``; each sample's objective is divided by its value at ``x0``.
    """
    states = [_Sample(x=x0[b].clone()) for b in range(x0.shape[0])]
    max_evals = settings.max_evals or 2 * settings.max_iter + 5
    rounds = 0
    while True:
        active = [b for b, s in enumerate(states) if not s.done]
        if not active:
            break
        trial = torch.stack([
            states[b].x if states[b].phase == "start" else states[b].x + states[b].t * states[b].d
            for b in active
        ])
        f, g, extra = objective(trial, torch.as_tensor(active, device=x0.device))
        f, g, extra = f.detach(), g.detach(), extra.detach()
        for k, b in enumerate(active):
            state = states[b]
            state.evals += 1
            fk, ek = float(f[k]), extra[k].tolist()
            if not math.isfinite(fk) or not torch.isfinite(g[k]).all():
                if state.phase == "start":
                    state.done = "line_search"
                    continue
                # treat as a failed trial: shrink toward the last good point
                fk, gk = math.inf, g[k].nan_to_num(0.0)
            else:
                gk = g[k]
            if state.phase == "start":
                state.scale = 1.0 / max(abs(fk), 1e-300)
                state.f = fk * state.scale
                state.g = gk * state.scale
                state.g0_max = max(float(state.g.abs().max()), 1e-300)
                state.history_f.append(state.f)
                state.extras.append(ek)
                if settings.max_iter == 0:
                    state.done = "max_iter"
                    continue
                _new_search(state)
            else:
                _update(state, fk * state.scale, gk * state.scale, ek, settings)
            if not state.done and state.evals >= max_evals:
                state.done = "max_evals"
        if on_round is not None:
            on_round(rounds, active)
        rounds += 1
    return LbfgsResult(
        x=torch.stack([s.x for s in states]),
        f=torch.tensor([s.f for s in states], dtype=torch.float64),
        objective=[s.history_f for s in states],
        extras=[s.extras for s in states],
        iterations=[s.iterations for s in states],
        evaluations=[s.evals for s in states],
        stop=[s.done for s in states],
    )
