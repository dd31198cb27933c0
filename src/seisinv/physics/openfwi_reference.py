"""A plain-PyTorch re-implementation of OpenFWI's forward-modelling scheme, differentiable.

``openfwi_reference`` checks ``simulate`` (deepwave) against the scheme that produced the
OpenFWI / Kaggle GWI gathers (no gradient, float32 result on the CPU). ``openfwi_scheme`` is the
same computation on any device and dtype with gradients w.r.t. the velocity (the time loop is
stepped in place with a hand-written adjoint, checkpointed in segments, so memory grows with
``sqrt(nt)`` fields, not ``nt``): FWI's
``physics: openfwi`` uses it to invert OpenFWI data with the numerics that made them, as the
Kaggle 2nd place did with its own kernels. It is several times slower than deepwave (the
120-cell sponge makes the grid 310 x 310 instead of 110 x 110; docs/fwi.md). The scheme:

- 2nd order in time, 4th order in space (Laplacian weights -5/2, 4/3, -1/12 per axis);
- the model is edge-replicated by ``nbc`` (120) cells on all four sides and a quadratic
  damping sponge (Collino & Tsogka 2001, eq. 20-21) is applied there; no free surface;
- Ricker of ``2 floor(2.2 / f / dt / 2) + 1`` samples peaking on its middle sample, zero after;
- update ``p = (2 + 2 c1 a - k) p1 - (1 - k) p0 + a (c2 sum(+-1) + c3 sum(+-2))`` with
  ``a = (v dt / dx)^2``, ``k = damping * dt``; then ``p[source] += (v dt)^2 s[i]``;
- the run lasts ``nt + 1`` steps and the first recorded sample is dropped. Where the receivers
  read the field is ambiguous in written descriptions: the Kaggle GWI data (checked on a real
  test sample: zero-offset traces agree to 0.5% relative L2 with amplitude factor 0.996-1.007)
  fit reading the field *before* each step's update (recorded sample ``j`` = field after step
  ``j``), which is the default here; ``record_after_update=True`` reads it after the update and
  injection (sample ``j`` = after step ``j + 1``, one sample earlier), as the public PyTorch
  port does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from seisinv.errors import DataError, SeisinvError
from seisinv.physics.wavelet import openfwi_wavelet_length
from seisinv.survey import Survey

# 4th-order central second-derivative weights: centre, +-1, +-2 cells.
C0, C1, C2 = -2.5, 4.0 / 3.0, -1.0 / 12.0


def openfwi_ricker(freq: float, dt: float, nt: int) -> torch.Tensor:
    """OpenFWI's truncated Ricker: (nt,) float64, unit peak on sample ``length // 2``, zero
    from sample ``openfwi_wavelet_length(freq, dt)`` on."""
    length = openfwi_wavelet_length(freq, dt)
    centre = length // 2
    k = torch.arange(min(length, nt), dtype=torch.float64)
    a = ((centre - k) * freq * dt * math.pi) ** 2
    w = torch.zeros(nt, dtype=torch.float64)
    w[: len(k)] = (1 - 2 * a) * torch.exp(-a)
    return w


def damping_profile(v_padded: torch.Tensor, nbc: int, dx: float) -> torch.Tensor:
    """Sponge damping coefficient (1/s) on the padded grid, (n, nzp, nxp).

    Quadratic ramp ``kappa (i dx / a)^2`` with ``a = (nbc - 1) dx`` and
    ``kappa = 3 v_min ln(1e7) / (2 a)``, largest on the outermost cell. As in OpenFWI the
    horizontal ramps are written after the vertical ones, so the corners carry the x ramp.
    """
    a = (nbc - 1) * dx
    vmin = v_padded.flatten(1).min(dim=1).values  # (n,)
    kappa = 3.0 * vmin * math.log(1e7) / (2.0 * a)
    cells = torch.arange(nbc, dtype=v_padded.dtype, device=v_padded.device)
    ramp = kappa[:, None] * (cells * dx / a)[None] ** 2
    damp = torch.zeros_like(v_padded)
    damp[:, :nbc, :] = ramp.flip(-1)[:, :, None]
    damp[:, -nbc:, :] = ramp[:, :, None]
    damp[:, :, :nbc] = ramp.flip(-1)[:, None, :]
    damp[:, :, -nbc:] = ramp[:, None, :]
    return damp


class _Stencil:
    """The scheme's Laplacian on one padded grid, in place, without allocating per step.

    ``apply(p, out)`` writes ``L(p) / C1`` into ``out`` (``L``: the 4th-order stencil without
    its centre term, periodic or zero outside the grid), so ``alpha * L(p)`` is
    ``(C1 alpha) * out``. ``L`` is symmetric in both variants, so it is its own adjoint.
    """

    def __init__(self, shape: tuple[int, ...], like: torch.Tensor, periodic: bool) -> None:
        self.periodic = periodic
        self.q = torch.zeros((*shape[:-2], shape[-2] + 4, shape[-1] + 4), dtype=like.dtype,
                             device=like.device)

    def apply(self, p: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        q = self.q
        q[..., 2:-2, 2:-2].copy_(p)
        if self.periodic:  # torch.roll's wrap-around, as OpenFWI's public port
            q[..., :2, 2:-2].copy_(p[..., -2:, :])
            q[..., -2:, 2:-2].copy_(p[..., :2, :])
            q[..., :, :2].copy_(q[..., :, -4:-2])
            q[..., :, -2:].copy_(q[..., :, 2:4])
        torch.add(q[..., :-4, 2:-2], q[..., 4:, 2:-2], out=out)
        out.add_(q[..., 2:-2, :-4]).add_(q[..., 2:-2, 4:]).mul_(C2 / C1)
        out.add_(q[..., 1:-3, 2:-2]).add_(q[..., 3:-1, 2:-2])
        return out.add_(q[..., 2:-2, 1:-3]).add_(q[..., 2:-2, 3:-1])


class _Propagation(torch.autograd.Function):
    """The scheme's time loop as one autograd node with a hand-written adjoint.

    Inputs: ``temp1``, ``temp2``, ``alpha_c1`` (= C1 alpha), each (n, 1, nzp, nxp), and
    ``inject`` (n, shots), plus the fixed geometry. Output: (n, shots, nt + 1, receivers) traces
    of every step (sample ``i`` reads the field before step ``i``'s update, or after it with
    ``after``). The forward keeps only the field pairs at segment starts; the backward
    recomputes one segment at a time and runs the adjoint recursion
    ``lam_i = R^T g_i + temp1 lam_{i+1} + L(alpha lam_{i+1}) - temp2 lam_{i+2}``.
    """

    @staticmethod
    def forward(ctx, temp1, temp2, alpha_c1, inject, src, geometry, periodic, after, segment):
        sz, sx, gz, gx = geometry
        n, shots = inject.shape
        shape = (n, shots, *temp1.shape[-2:])
        stencil = _Stencil(shape, temp1, periodic)
        p0 = torch.zeros(shape, dtype=temp1.dtype, device=temp1.device)
        p1, lap = torch.zeros_like(p0), torch.empty_like(p0)
        steps = len(src)
        seis = torch.empty((n, shots, steps, len(gz)), dtype=temp1.dtype, device=temp1.device)
        saved = []
        index = _source_index(n, shots, sz, sx, temp1.device)
        for i in range(steps):
            if i % segment == 0:
                saved += [p0.clone(), p1.clone()]
            if not after:
                seis[:, :, i] = p1[:, :, gz, gx]
            _step(p0, p1, lap, stencil, temp1, temp2, alpha_c1, index, inject * src[i])
            p0, p1 = p1, p0
            if after:
                seis[:, :, i] = p1[:, :, gz, gx]
        ctx.save_for_backward(temp1, temp2, alpha_c1, inject, src)
        ctx.fields = saved  # intermediate pairs: plain attributes, not autograd-tracked
        ctx.geometry, ctx.periodic, ctx.after, ctx.segment = geometry, periodic, after, segment
        return seis

    @staticmethod
    def backward(ctx, grad):
        temp1, temp2, alpha_c1, inject, src = ctx.saved_tensors
        saved = ctx.fields
        sz, sx, gz, gx = ctx.geometry
        after, segment, steps = ctx.after, ctx.segment, len(src)
        n, shots = inject.shape
        shape = (n, shots, *temp1.shape[-2:])
        stencil = _Stencil(shape, temp1, ctx.periodic)
        index = _source_index(n, shots, sz, sx, temp1.device)
        lap = torch.empty(shape, dtype=temp1.dtype, device=temp1.device)
        d_temp1, d_temp2, d_alpha = (torch.zeros_like(lap) for _ in range(3))
        d_inject = torch.zeros_like(inject)
        # lam1 = lam_{i+1}, lam2 = lam_{i+2}; the field after the last step is read only with
        # ``after`` (by sample steps - 1).
        lam1, lam2, work = torch.zeros_like(lap), torch.zeros_like(lap), torch.empty_like(lap)
        receivers = (torch.arange(n, device=grad.device)[:, None, None],
                     torch.arange(shots, device=grad.device)[None, :, None], gz[None, None],
                     gx[None, None])  # R^T: accumulate, so receivers may share a cell
        if after:
            lam1.index_put_(receivers, grad[:, :, steps - 1], accumulate=True)
        for start in reversed(range(0, steps, segment)):
            stop = min(start + segment, steps)
            fields = saved[2 * (start // segment): 2 * (start // segment) + 2]
            p0, p1 = fields[0].clone(), fields[1].clone()  # fields: p_{start-1} .. p_{stop-1}
            laps = []  # L(p_i) / C1 for i in start .. stop - 1, as the steps computed them
            for i in range(start, stop - 1):
                _step(p0, p1, lap, stencil, temp1, temp2, alpha_c1, index, inject * src[i])
                laps.append(lap.clone())
                p0, p1 = p1, p0
                fields.append(p1.clone())
            laps.append(stencil.apply(fields[-1], lap).clone())
            for i in reversed(range(start, stop)):
                before, now = fields[i - start], fields[i - start + 1]  # p_{i-1}, p_i
                d_temp1.addcmul_(lam1, now)
                d_temp2.addcmul_(lam1, before, value=-1.0)
                d_alpha.addcmul_(lam1, laps[i - start])
                d_inject.add_(lam1[index] * src[i])
                # lam_i = R^T g_i + temp1 lam_{i+1} + L(alpha lam_{i+1}) - temp2 lam_{i+2}
                torch.mul(alpha_c1, lam1, out=work)
                lam2.mul_(temp2).neg_().addcmul_(temp1, lam1).add_(stencil.apply(work, lap))
                reading = i - 1 if after else i
                if reading >= 0:
                    lam2.index_put_(receivers, grad[:, :, reading], accumulate=True)
                lam1, lam2 = lam2, lam1
        # d alpha_c1: the stencil output is L / C1 and alpha_c1 = C1 alpha, so the products match.
        return (d_temp1.sum(1, keepdim=True), d_temp2.sum(1, keepdim=True),
                d_alpha.sum(1, keepdim=True), d_inject, None, None, None, None, None)


def _source_index(n: int, shots: int, sz, sx, device) -> tuple[torch.Tensor, ...]:
    """Advanced index of each (sample, shot)'s source cell in an (n, shots, nzp, nxp) field."""
    return (torch.arange(n, device=device)[:, None], torch.arange(shots, device=device)[None],
            sz[None], sx[None])


def _step(p0, p1, lap, stencil, temp1, temp2, alpha_c1, index, source) -> None:
    """One update in place: ``p0 <- temp1 p1 - temp2 p0 + alpha L(p1)``, then the source
    ``(v dt)^2 s[i]`` (``source``, (n, shots)) added at each shot's cell."""
    stencil.apply(p1, lap)
    p0.mul_(temp2).neg_().addcmul_(temp1, p1).addcmul_(alpha_c1, lap)
    p0.index_put_(index, source, accumulate=True)


def openfwi_scheme(
    velocity: torch.Tensor,
    survey: Survey,
    *,
    shots: Sequence[int] | None = None,
    nbc: int = 120,
    periodic: bool = True,
    record_after_update: bool = False,
    segment: int | None = None,
) -> torch.Tensor:
    """Gathers of OpenFWI's scheme, differentiable w.r.t. ``velocity``, in its dtype and device.

    Args:
        velocity: (n, nz, nx) tensor in the survey's units, axis 1 is depth (``dz == dx``);
            float32 or float64, may require grad.
        survey: geometry, ``dt``, ``nt`` and Ricker frequency (sources and receivers on cells).
        shots: indices of the shots to model (default all).
        nbc, periodic, record_after_update: as in ``openfwi_reference``.
        segment: time steps between the field pairs kept for the backward pass (default
            ``isqrt(nt + 1) + 1``); the backward recomputes one segment at a time.

    Returns:
        (n, len(shots), nt, receivers) gathers, ``velocity``'s dtype and device.

    Raises:
        DataError: wrong shape or ``dz != dx``; SeisinvError: bad ``shots``.
    """
    if velocity.ndim != 3 or tuple(velocity.shape[1:]) != survey.velocity_shape:
        raise DataError(f"velocity: expected (n, {survey.nz}, {survey.nx}), got "
                        f"{tuple(velocity.shape)}")
    if survey.dz != survey.dx:
        raise DataError(f"the OpenFWI scheme needs dz == dx, got dz={survey.dz}, dx={survey.dx}")
    picked = list(range(survey.n_shots)) if shots is None else [int(i) for i in shots]
    if not picked or any(not 0 <= i < survey.n_shots for i in picked):
        raise SeisinvError(f"shots: expected indices in 0..{survey.n_shots - 1}, got {shots}")
    dtype, device = velocity.dtype, velocity.device
    dx, dt, nt = survey.dx, survey.dt, survey.nt
    vp = F.pad(velocity[:, None] * survey.to_mps, (nbc,) * 4, mode="replicate")[:, 0]
    alpha = ((vp * dt / dx) ** 2)[:, None]  # (n, 1, nzp, nxp)
    k = (damping_profile(vp, nbc, dx) * dt)[:, None]
    temp1, temp2 = 2 + 2 * C0 * alpha - k, 1 - k
    src = openfwi_ricker(survey.frequency, dt, nt + 1).to(device=device, dtype=dtype)
    cells = torch.as_tensor(survey.source_cells[picked] + nbc, device=device)
    receivers = torch.as_tensor(survey.receiver_cells + nbc, device=device)
    geometry = (cells[:, 0], cells[:, 1], receivers[:, 0], receivers[:, 1])
    inject = (vp[:, cells[:, 0], cells[:, 1]] * dt) ** 2  # (n, shots): (v dt)^2 at the source
    seis = _Propagation.apply(temp1, temp2, C1 * alpha, inject, src, geometry, periodic,
                              record_after_update, segment or math.isqrt(nt + 1) + 1)
    return seis[:, :, 1:]


def openfwi_reference(
    velocity: torch.Tensor | np.ndarray,
    survey: Survey,
    nbc: int = 120,
    periodic: bool = True,
    record_after_update: bool = False,
) -> torch.Tensor:
    """Gathers of OpenFWI's scheme for the survey's geometry (float64, no gradient).

    Args:
        velocity: (n, nz, nx) in the survey's units, axis 1 is depth. The survey must have
            ``dz == dx``.
        survey: geometry, ``dt``, ``nt`` and Ricker frequency; sources and receivers at
            ``survey.source_cells`` / ``survey.receiver_cells``.
        nbc: width of the replicated, damped border in cells on each side.
        periodic: wrap the stencil around the padded grid (``torch.roll``), as the public
            PyTorch port of OpenFWI's modelling does (default); False holds the pressure at
            zero outside it. They differ only by waves that leak through the sponge
            (0.3-3% relative L2 of a gather; see docs/physics.md).
        record_after_update: read the receivers after each step's update and injection
            (public port; one sample earlier) instead of before the update (Kaggle data).

    Returns:
        (n, shots, nt, receivers) float32 gathers on the CPU, no gradient.
    """
    v = torch.as_tensor(velocity, dtype=torch.float64)
    with torch.no_grad():
        seis = openfwi_scheme(v, survey, nbc=nbc, periodic=periodic,
                              record_after_update=record_after_update)
    return seis.to(torch.float32)
