"""Data misfits between simulated and observed gathers, one value per sample.

Each misfit is a pure function ``(simulated, observed) -> (batch,)`` of gathers
``(batch, shots, time, receivers)`` and is registered by name in ``MISFITS``.
"""

from __future__ import annotations

import torch

from seisinv.registry import Registry

MISFITS: Registry = Registry("misfit")


@MISFITS.register("l2")
def l2_misfit(simulated: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Least squares, normalised by the observed energy so samples weigh alike.

    ``0.5 * sum (s - o)^2 / sum o^2`` per sample (0 for a perfect fit, 0.5 for ``s = 0``).

    Args:
        simulated, observed: ``(batch, shots, time, receivers)`` gathers (same shape).

    Returns:
        ``(batch,)`` misfit, dimensionless.
    """
    residual = (simulated - observed).flatten(1)
    energy = observed.detach().flatten(1).pow(2).sum(1).clamp_min(torch.finfo(observed.dtype).tiny)
    return 0.5 * residual.pow(2).sum(1) / energy


@MISFITS.register("normalized")
def normalized_misfit(simulated: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Trace-normalised correlation misfit, insensitive to each trace's amplitude.

    ``mean over traces of (1 - <s, o> / (|s| |o|))``: 0 when every simulated trace is a positive
    multiple of its observed trace, 1 for uncorrelated traces. Robust to an unknown source
    amplitude, receiver coupling and amplitude errors of the physics; fits phase and timing.

    Args:
        simulated, observed: ``(batch, shots, time, receivers)`` gathers.

    Returns:
        ``(batch,)`` misfit in [0, 2].
    """
    sim = simulated.transpose(-1, -2).flatten(1, -2)  # (batch, traces, time)
    obs = observed.transpose(-1, -2).flatten(1, -2)
    tiny = torch.finfo(simulated.dtype).eps
    sim_norm = sim.pow(2).sum(-1).add(tiny).sqrt()
    obs_norm = obs.pow(2).sum(-1).add(tiny).sqrt()
    correlation = (sim * obs).sum(-1) / (sim_norm * obs_norm)
    return (1.0 - correlation).mean(-1)
