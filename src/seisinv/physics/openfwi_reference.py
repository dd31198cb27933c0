"""A slow, plain-PyTorch re-implementation of OpenFWI's forward-modelling scheme.

It exists to check ``simulate`` (deepwave) against the scheme that produced the OpenFWI /
Kaggle GWI gathers, not for production use (about 100x slower than deepwave). The scheme:

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

import numpy as np
import torch
import torch.nn.functional as F

from seisinv.errors import DataError
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
    ramp = kappa[:, None] * (torch.arange(nbc, dtype=v_padded.dtype) * dx / a)[None] ** 2
    damp = torch.zeros_like(v_padded)
    damp[:, :nbc, :] = ramp.flip(-1)[:, :, None]
    damp[:, -nbc:, :] = ramp[:, :, None]
    damp[:, :, :nbc] = ramp.flip(-1)[:, None, :]
    damp[:, :, -nbc:] = ramp[:, None, :]
    return damp


def _laplacian_periodic(p: torch.Tensor) -> torch.Tensor:
    """Stencil sum without the centre term, wrapping around the padded grid (torch.roll)."""
    return C1 * (p.roll(1, -2) + p.roll(-1, -2) + p.roll(1, -1) + p.roll(-1, -1)) + C2 * (
        p.roll(2, -2) + p.roll(-2, -2) + p.roll(2, -1) + p.roll(-2, -1)
    )


def _laplacian_zero(p: torch.Tensor) -> torch.Tensor:
    """Stencil sum without the centre term, with zero pressure outside the padded grid."""
    q = F.pad(p, (2, 2, 2, 2))
    return C1 * (
        q[..., 1:-3, 2:-2] + q[..., 3:-1, 2:-2] + q[..., 2:-2, 1:-3] + q[..., 2:-2, 3:-1]
    ) + (C2 * (q[..., :-4, 2:-2] + q[..., 4:, 2:-2] + q[..., 2:-2, :-4] + q[..., 2:-2, 4:]))


def openfwi_reference(
    velocity: torch.Tensor | np.ndarray,
    survey: Survey,
    nbc: int = 120,
    periodic: bool = True,
    record_after_update: bool = False,
) -> torch.Tensor:
    """Gathers of OpenFWI's scheme for the survey's geometry (float64 internally).

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
    v = torch.as_tensor(velocity, dtype=torch.float64) * survey.to_mps
    if v.ndim != 3 or tuple(v.shape[1:]) != survey.velocity_shape:
        raise DataError(f"velocity: expected (n, {survey.nz}, {survey.nx}), got {tuple(v.shape)}")
    if survey.dz != survey.dx:
        raise DataError(f"openfwi_reference needs dz == dx, got dz={survey.dz}, dx={survey.dx}")
    dx, dt, nt = survey.dx, survey.dt, survey.nt
    n, n_shots = v.shape[0], survey.n_shots
    with torch.no_grad():
        vp = F.pad(v[:, None], (nbc,) * 4, mode="replicate")[:, 0]  # (n, nzp, nxp)
        alpha = ((vp * dt / dx) ** 2)[:, None]  # (n, 1, nzp, nxp)
        k = (damping_profile(vp, nbc, dx) * dt)[:, None]
        temp1, temp2 = 2 + 2 * C0 * alpha - k, 1 - k
        src = openfwi_ricker(survey.frequency, dt, nt + 1)
        sz, sx = (survey.source_cells + nbc).T
        gz, gx = (survey.receiver_cells + nbc).T
        shot = torch.arange(n_shots)
        inject = (vp[:, sz, sx] * dt) ** 2  # (n, shots): (v dt)^2 at each source cell
        p0 = torch.zeros((n, n_shots, *vp.shape[1:]), dtype=torch.float64)
        p1 = torch.zeros_like(p0)
        seis = torch.empty((n, n_shots, nt + 1, len(gx)), dtype=torch.float64)
        laplacian = _laplacian_periodic if periodic else _laplacian_zero
        for i in range(nt + 1):
            lap = laplacian(p1)
            if not record_after_update:
                seis[:, :, i] = p1[:, :, gz, gx]
            p = temp1 * p1 - temp2 * p0 + alpha * lap
            p[:, shot, sz, sx] += inject * src[i]
            if record_after_update:
                seis[:, :, i] = p[:, :, gz, gx]
            p0, p1 = p1, p
    return seis[:, :, 1:].to(torch.float32)
