"""``openfwi_scheme``: OpenFWI's forward scheme with a hand-written adjoint (FWI's ``physics:
openfwi``), checked against autograd through a plain step-by-step loop written as the public
PyTorch port of OpenFWI's modelling writes it (``torch.roll`` stencil, out-of-place updates)."""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F

from seisinv.physics import openfwi_reference, openfwi_scheme
from seisinv.survey import OPENFWI

scheme = importlib.import_module("seisinv.physics.openfwi_reference")
NBC = 20


@pytest.fixture(scope="module")
def survey():
    return OPENFWI.replace(name="scheme-tiny", nz=16, nx=16, nt=120, source_x=(0.0, 70.0, 150.0),
                           receiver_x=tuple(10.0 * i for i in range(16)))


def plain_loop(v: torch.Tensor, survey, periodic: bool, after: bool) -> torch.Tensor:
    """The scheme as written in OpenFWI's public port, differentiable by autograd."""
    c1, c2 = 4.0 / 3.0, -1.0 / 12.0
    vp = F.pad(v[:, None], (NBC,) * 4, mode="replicate")[:, 0]
    alpha = ((vp * survey.dt / survey.dx) ** 2)[:, None]
    k = (scheme.damping_profile(vp, NBC, survey.dx) * survey.dt)[:, None]
    temp1, temp2 = 2 - 5 * alpha - k, 1 - k
    src = scheme.openfwi_ricker(survey.frequency, survey.dt, survey.nt + 1).to(v.dtype)
    sz, sx = (torch.as_tensor(survey.source_cells) + NBC).T
    gz, gx = (torch.as_tensor(survey.receiver_cells) + NBC).T
    shot = torch.arange(len(sz))
    inject = (vp[:, sz, sx] * survey.dt) ** 2

    def lap(p):
        if periodic:
            return c1 * (p.roll(1, -2) + p.roll(-1, -2) + p.roll(1, -1) + p.roll(-1, -1)) + c2 * (
                p.roll(2, -2) + p.roll(-2, -2) + p.roll(2, -1) + p.roll(-2, -1))
        q = F.pad(p, (2, 2, 2, 2))
        return c1 * (q[..., 1:-3, 2:-2] + q[..., 3:-1, 2:-2] + q[..., 2:-2, 1:-3]
                     + q[..., 2:-2, 3:-1]) + c2 * (q[..., :-4, 2:-2] + q[..., 4:, 2:-2]
                                                   + q[..., 2:-2, :-4] + q[..., 2:-2, 4:])

    p0 = torch.zeros((v.shape[0], len(sz), *vp.shape[1:]), dtype=v.dtype)
    p1 = torch.zeros_like(p0)
    traces = []
    for i in range(survey.nt + 1):
        if not after:
            traces.append(p1[:, :, gz, gx])
        p = temp1 * p1 - temp2 * p0 + alpha * lap(p1)
        source = torch.zeros_like(p)
        source[:, shot, sz, sx] = inject * src[i]
        p = p + source
        if after:
            traces.append(p[:, :, gz, gx])
        p0, p1 = p1, p
    return torch.stack(traces, 2)[:, :, 1:]


def _velocity() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return 2000 + 1500 * torch.rand(2, 16, 16, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("after", [False, True])
def test_gathers_and_adjoint_gradient_match_autograd_through_the_plain_loop(survey, periodic,
                                                                             after):
    v, w = _velocity().requires_grad_(True), _velocity().requires_grad_(True)
    ours = openfwi_scheme(v, survey, nbc=NBC, periodic=periodic, record_after_update=after,
                          segment=7)
    theirs = plain_loop(w, survey, periodic, after)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    weights = torch.randn(theirs.shape, generator=torch.Generator().manual_seed(1),
                          dtype=torch.float64)
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    assert float(w.grad.abs().max()) > 0
    assert float((v.grad - w.grad).norm() / w.grad.norm()) < 1e-10


def test_gradient_does_not_depend_on_the_checkpoint_segment(survey):
    grads = []
    for segment in (1, 7, None, 1000):
        v = _velocity().requires_grad_(True)
        openfwi_scheme(v, survey, nbc=NBC, segment=segment).pow(2).sum().backward()
        grads.append(v.grad)
    for grad in grads[1:]:
        torch.testing.assert_close(grad, grads[0], rtol=1e-11, atol=0)


def test_shot_subset_float32_and_the_reference_wrapper(survey):
    v = _velocity()
    full = openfwi_scheme(v, survey, nbc=NBC)
    torch.testing.assert_close(openfwi_scheme(v, survey, nbc=NBC, shots=[2, 0]), full[:, [2, 0]])
    single = openfwi_scheme(v.float(), survey, nbc=NBC)
    assert single.dtype == torch.float32
    assert float((single.double() - full).norm() / full.norm()) < 1e-4
    torch.testing.assert_close(openfwi_reference(v, survey, nbc=NBC), full.float())
    with pytest.raises(Exception, match="shots: expected indices in 0..2"):
        openfwi_scheme(v, survey, shots=[3])
