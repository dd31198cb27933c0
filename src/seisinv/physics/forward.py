"""Acoustic forward modelling with deepwave's scalar propagator: velocity maps -> shot gathers."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from seisinv.errors import ConfigError, DataError, SeisinvError
from seisinv.physics.grid import (
    coarse_shape,
    gradient_interval_for,
    internal_velocity,
    plan_grid,
)
from seisinv.physics.wavelet import survey_wavelet
from seisinv.runtime import resolve_device
from seisinv.survey import Survey, velocity_message


def _velocity_tensor(velocity, survey: Survey, device: torch.device,
                     dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, float]:
    """Check ``velocity`` (n, nz, nx) in survey units; return it in m/s, ``dtype``, with its
    maximum in m/s.

    OpenFWI's model files hold (n, 1, nz, nx) and a single map is (nz, nx): both are accepted
    and become (n, nz, nx) / (1, nz, nx). Values are checked by ``Survey.range_problems`` (the
    survey's one velocity check, at ``VELOCITY_SLACK``) from one device read of min and max."""
    if not isinstance(velocity, (torch.Tensor, np.ndarray)):
        raise DataError(
            f"velocity: expected a numpy array or torch tensor, got {type(velocity).__name__}"
        )
    if velocity.ndim == 4 and velocity.shape[1] == 1:
        velocity = velocity[:, 0]
    elif velocity.ndim == 2:
        velocity = velocity[None]
    if velocity.ndim != 3 or tuple(velocity.shape[-2:]) != survey.velocity_shape:
        raise DataError(
            f"velocity: expected shape (n, {survey.nz}, {survey.nx}) (depth first) for survey "
            f"{survey.name!r}, got {tuple(velocity.shape)}"
        )
    v = torch.as_tensor(velocity, device=device)
    if not v.is_floating_point():
        v = v.float()
    v = v.to(device=device, dtype=dtype)
    with torch.no_grad():
        low, high = torch.stack(torch.aminmax(v)).tolist()  # one device -> host read
    problems = survey.range_problems(low, high)
    if problems:
        raise DataError(velocity_message("velocity", problems))
    return v * survey.to_mps, high * survey.to_mps


def _shot_indices(shots: Sequence[int] | None, survey: Survey) -> list[int]:
    if shots is None:
        return list(range(survey.n_shots))
    indices = [int(s) for s in shots]
    bad = [s for s in indices if not 0 <= s < survey.n_shots]
    if bad or not indices:
        raise SeisinvError(
            f"shots: expected a non-empty list of indices in 0..{survey.n_shots - 1}, got {shots}"
        )
    return indices


def _wavelet_tensor(wavelet, survey: Survey, n_shots: int, device: torch.device) -> torch.Tensor:
    """Source wavelet per selected shot: (n_shots, nt) float32 on ``device``."""
    if wavelet is None:
        w = survey_wavelet(survey).to(device)
    else:
        w = torch.as_tensor(wavelet).to(device=device, dtype=torch.float32)
    if w.ndim == 1:
        w = w.unsqueeze(0).expand(n_shots, -1)
    if w.ndim != 2 or w.shape != (n_shots, survey.nt):
        raise SeisinvError(
            f"wavelet: expected shape ({survey.nt},) or ({n_shots}, {survey.nt}) "
            f"(selected shots, time samples), got {tuple(w.shape)}"
        )
    return w


def _resample_time(data: torch.Tensor, factor: int, nt: int) -> torch.Tensor:
    """(..., nt_internal) sampled every ``factor`` recording steps -> (..., nt) by linear
    interpolation; the wavefield is oversampled many times over (15 Hz at <= 0.4 ms), so the
    interpolation error is far below the discretisation error."""
    if factor == 1:
        return data[..., :nt]
    t = torch.arange(nt, device=data.device, dtype=torch.float64) / factor
    i0 = t.floor().long().clamp(max=data.shape[-1] - 2)
    frac = (t - i0).to(data.dtype)
    return data[..., i0] * (1 - frac) + data[..., i0 + 1] * frac


# Float32 arrays of the padded internal grid alive per shot in a forward call: deepwave's two
# time levels and four PML auxiliaries (2 + 2 * ndim), the per-shot velocity copy and deepwave's
# padded copy of it.
_FIELDS_PER_SHOT = 8
# Float32 copies of the receiver traces per shot: deepwave's output, the time resampling and
# the transposed result.
_TRACE_COPIES = 3


def simulate_bytes_per_sample(survey: Survey) -> int:
    """Estimated peak memory, in bytes, that one sample adds to a forward ``simulate`` call
    without gradients (all shots): padded internal-grid wavefields plus receiver traces.

    Used to size physics batches from a device's free memory (``generation.common.auto_batch``);
    ``benchmarks/gpu.py`` prints it next to the peak CUDA memory actually allocated.
    """
    sim = survey.simulation
    plan = plan_grid(survey, survey.vmax * survey.to_mps)
    nz, nx = coarse_shape(survey, plan.coarsen)
    top, bottom, left, right = plan.pad
    halo = sim.accuracy  # deepwave's finite-difference padding, accuracy // 2 per side
    width = sim.boundary_width
    cells = (nz + top + bottom + 2 * width + halo) * (nx + left + right + 2 * width + halo)
    nt_int = (survey.nt - 1) // plan.time_factor + 2
    traces = survey.n_receivers * (nt_int + _TRACE_COPIES * survey.nt)
    return 4 * survey.n_shots * (_FIELDS_PER_SHOT * cells + traces + nt_int)


def simulate(
    velocity: torch.Tensor | np.ndarray,
    survey: Survey,
    *,
    device: str | torch.device = "auto",
    shots: Sequence[int] | None = None,
    wavelet: torch.Tensor | np.ndarray | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Model the survey's shot gathers over velocity maps with the 2-D acoustic wave equation.

    Solves ``p_tt = v^2 (lap p + s(t) delta_source)`` with the point source injected as
    ``(v dt)^2 s`` into its cell (OpenFWI's convention; see docs/physics.md for amplitude,
    sign and timing). All samples and shots run in one deepwave call (a velocity per shot),
    so there is no Python loop over time or shots. Settings come from ``survey.simulation``
    (stencil order, absorbing layer, free surface, internal-grid coarsening).

    Args:
        velocity: (n, nz, nx) velocity in the survey's units (m/s or km/s), axis 1 is depth;
            OpenFWI's (n, 1, nz, nx) and a single (nz, nx) map are accepted too (n = 1).
            A tensor requiring grad gives gathers differentiable w.r.t. it.
        survey: acquisition geometry and ``survey.simulation`` settings.
        device: "auto", "cpu", "cuda" or a torch.device.
        shots: indices of the shots to model (default: all ``survey.n_shots``).
        wavelet: source wavelet overriding the survey's Ricker, (nt,) for every shot or
            (len(shots), nt) one per selected shot, dimensionless, sample ``i`` at time
            ``i * survey.dt``; it is multiplied by ``survey.simulation.source_scale`` like the
            default. May require grad (wavelet estimation).
        dtype: float32 (default) or float64 (FWI's quasi-Newton, Taylor tests).

    Returns:
        (n, len(shots), survey.nt, survey.n_receivers) ``dtype`` gathers on ``device``, sample
        ``j`` at time ``j * survey.dt``, time axis before receivers (the challenges' layout).

    Raises:
        DataError: velocity of the wrong shape, non-finite, in the wrong units or outside the
            survey's range widened by ``VELOCITY_SLACK`` (``Survey.range_problems``).
        SeisinvError: bad ``shots`` or ``wavelet``.
        ConfigError: ``survey.simulation.boundary`` other than "pml".
    """
    import deepwave

    if survey.simulation.boundary != "pml":
        raise ConfigError(
            f"survey {survey.name!r}: simulation.boundary {survey.simulation.boundary!r} is not "
            "available in simulate (deepwave has a PML only; it matches OpenFWI's damped scheme "
            "to ~0.2%); use 'pml', or seisinv.physics.openfwi_reference for the sponge itself"
        )
    dev = resolve_device(device)
    v, v_max = _velocity_tensor(velocity, survey, dev, dtype)
    shot_ids = _shot_indices(shots, survey)
    n, n_shots = v.shape[0], len(shot_ids)
    sim = survey.simulation
    w = _wavelet_tensor(wavelet, survey, n_shots, dev).to(dtype)
    max_vel = max(v_max, survey.vmax * survey.to_mps)
    plan = plan_grid(survey, max_vel)
    v_int = internal_velocity(v, survey, plan)
    k = plan.time_factor
    nt_int = (survey.nt - 1) // k + 2  # one sample past the record end for interpolation
    # deepwave needs the gradient sampling interval to divide its step count (nt_int): pad with
    # zero-source steps past the record end (their output is dropped).
    grad_interval = gradient_interval_for(survey, survey.dt * k, None if wavelet is None else w)
    nt_int = -(-nt_int // grad_interval) * grad_interval

    # deepwave injects -(v dt)^2 f; OpenFWI (and devito) inject +(v dt)^2 s, so flip the sign.
    # A coarse cell spreads the same source over c^2 survey cells: divide by c^2 so the
    # wavefield amplitude does not depend on the grid.
    scale = -sim.source_scale / plan.coarsen**2
    w_int = F.pad(w, (0, k * nt_int))[:, ::k][:, :nt_int]
    amplitudes = (scale * w_int).repeat(n, 1).unsqueeze(1)  # (n*shots, 1, nt_int)
    loc_dtype = torch.float32 if plan.off_node else torch.long
    src = torch.as_tensor(plan.source_positions[shot_ids], device=dev)
    src = (src if plan.off_node else src.round()).to(loc_dtype).unsqueeze(1).repeat(n, 1, 1)
    rec = torch.as_tensor(plan.receiver_positions, device=dev)
    rec = (rec if plan.off_node else rec.round()).to(loc_dtype)
    rec = rec.unsqueeze(0).expand(n * n_shots, -1, -1).contiguous()  # (n*shots, receivers, 2)

    width = sim.boundary_width
    with warnings.catch_warnings():
        # deepwave notes that off-node windows changed since 0.0.27; nothing to migrate here.
        warnings.filterwarnings("ignore", category=deepwave.MigrationWarning)
        out = deepwave.scalar(
            v_int.repeat_interleave(n_shots, dim=0),
            list(plan.spacing),
            survey.dt * k,
            source_amplitudes=amplitudes,
            source_locations=src,
            receiver_locations=rec,
            accuracy=sim.accuracy,
            pml_width=[0 if sim.free_surface else width, width, width, width],
            boundary=["free", "pml", "pml", "pml"] if sim.free_surface else None,
            pml_freq=survey.frequency,
            max_vel=max_vel,
            courant_number=sim.courant_number,
            model_gradient_sampling_interval=grad_interval,
        )
    data = _resample_time(out[-1], k, survey.nt)  # (n*shots, receivers, nt): time last
    return data.reshape(n, n_shots, survey.n_receivers, survey.nt).transpose(2, 3).contiguous()
