"""Tests for seisinv.physics (tiny grids, CPU, one thread)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seisinv.errors import SeisinvError
from seisinv.physics import ricker, simulate


def test_simulate_shape_dtype_and_gradient(tiny_survey):
    v = torch.full((2, *tiny_survey.velocity_shape), 2500.0, requires_grad=True)
    gathers = simulate(v, tiny_survey, device="cpu")
    assert gathers.shape == (2, *tiny_survey.gather_shape)
    assert gathers.dtype == torch.float32
    gathers.pow(2).sum().backward()
    assert torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0


def test_ricker_peaks_at_peak_time():
    w = ricker(15.0, 0.001, 200, peak_time=0.05)
    assert int(w.argmax()) == 50 and w.max() == pytest.approx(1.0)


def test_wrong_shape_raises(tiny_survey):
    with pytest.raises(SeisinvError):
        simulate(np.full((1, 10, 10), 2500.0), tiny_survey, device="cpu")
