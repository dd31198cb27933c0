"""Gather misfits: the one definition of "how far are simulated gathers from observed ones".

Every misfit is a pure torch function of gathers ``(batch, shots, time, receivers)`` returning
one value per sample (or per sample and shot). FWI (``seisinv.fwi``), the physics training loss
(``seisinv.training.losses``, term ``physics``) and ``seisinv qc`` all use these functions.

- ``residual_energy_ratio``: ``sum (s - o)^2 / sum o^2`` (the base fact);
- ``l2_misfit``: half of it, FWI's least-squares objective (registered "l2");
- ``relative_l2``: its square root, the relative L2 norm ``||s - o|| / ||o||`` that ``qc`` reports;
- ``normalized_misfit``: trace-normalised correlation (registered "normalized").
"""

from __future__ import annotations

import torch

from seisinv.registry import Registry

MISFITS: Registry = Registry("misfit")


def residual_energy_ratio(simulated: torch.Tensor, observed: torch.Tensor,
                          per_shot: bool = False) -> torch.Tensor:
    """Residual energy over observed energy, ``sum (s - o)^2 / sum o^2``.

    The observed energy is a constant (detached), so gradients flow through ``simulated`` only.

    Args:
        simulated, observed: ``(batch, shots, time, receivers)`` gathers of the same shape.
        per_shot: sum each shot on its own and return ``(batch, shots)``.

    Returns:
        ``(batch,)`` (or ``(batch, shots)``) dimensionless ratio: 0 for a perfect fit, 1 for
        ``s = 0``.
    """
    start = 2 if per_shot else 1
    residual = (simulated - observed).flatten(start).pow(2).sum(-1)
    energy = observed.detach().flatten(start).pow(2).sum(-1)
    return residual / energy.clamp_min(torch.finfo(energy.dtype).tiny)


@MISFITS.register("l2")
def l2_misfit(simulated: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Least squares, normalised by the observed energy so samples weigh alike.

    ``0.5 * sum (s - o)^2 / sum o^2`` per sample (0 for a perfect fit, 0.5 for ``s = 0``).

    Args:
        simulated, observed: ``(batch, shots, time, receivers)`` gathers (same shape).

    Returns:
        ``(batch,)`` misfit, dimensionless.
    """
    return 0.5 * residual_energy_ratio(simulated, observed)


def relative_l2(simulated: torch.Tensor, observed: torch.Tensor,
                per_shot: bool = False) -> torch.Tensor:
    """Relative L2 norm ``||s - o|| / ||o||`` per sample (or per sample and shot).

    Args:
        simulated, observed: ``(batch, shots, time, receivers)`` gathers.
        per_shot: return ``(batch, shots)`` instead of ``(batch,)``.

    Returns:
        Dimensionless; 0 = identical, 1 = as large as the data itself (e.g. ``s = 0``).
    """
    return residual_energy_ratio(simulated, observed, per_shot).sqrt()


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
