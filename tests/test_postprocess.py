"""Post-processing operations: one invariant per operation that a wrong implementation breaks."""

from __future__ import annotations

import numpy as np
import pytest

from seisinv.errors import ConfigError, SeisinvError
from seisinv.inference import postprocess as pp
from seisinv.survey import OPENFWI


def op(text, survey=OPENFWI):
    return pp.build_chain([pp.parse_post(text)], survey)


def layered(nz=20, nx=12, speeds=(1800.0, 2600.0, 3400.0)):
    """Three flat layers (depth first), the FlatVel shape."""
    v = np.empty((nz, nx))
    for k, speed in enumerate(speeds):
        v[k * nz // len(speeds):] = speed
    return v


def test_parse_post_reads_numbers_and_refuses_unknown_names():
    assert pp.parse_post("snap_levels:levels=4,axis=row") == {"name": "snap_levels", "levels": 4,
                                                              "axis": "row"}
    assert pp.parse_post("gaussian:sigma=1.5")["sigma"] == 1.5
    with pytest.raises(SeisinvError, match="unknown post-processing operation 'blur'"):
        pp.parse_post("blur")
    with pytest.raises(ConfigError, match="key=value"):
        pp.parse_post("gaussian:1.5")
    with pytest.raises(ConfigError, match="bad parameters"):
        op("gaussian:radius=2")


def test_clip_bounds_to_the_survey_range():
    v = np.array([[1000.0, 2000.0], [5000.0, 4500.0]])
    out = op("clip")(v)
    assert out.min() == 1500 and out.max() == 4500 and out[0, 1] == 2000
    assert op("clip:vmin=1900,vmax=2100")(v).tolist() == [[1900, 2000], [2100, 2100]]


def test_round_gives_multiples_of_the_step():
    v = np.random.default_rng(0).uniform(1500, 4500, (5, 5))
    np.testing.assert_array_equal(op("round")(v), np.round(v).astype(np.float32))
    out = op("round:step=50")(v)
    np.testing.assert_allclose(out % 50, 0)
    assert np.abs(out - v).max() <= 25 + 1e-3


def test_snap_levels_recovers_noisy_layers():
    clean = layered()
    noisy = clean + np.random.default_rng(1).normal(0, 30, clean.shape)
    out = op("snap_levels:levels=3")(noisy)
    for column in out.T:
        assert len(np.unique(column)) <= 3
    # Each centre is the mean of ~7 pixels of its layer: the error drops by about sqrt(7).
    assert np.abs(out - clean).mean() < 0.6 * np.abs(noisy - clean).mean()
    whole = op("snap_levels:levels=3,axis=map")(noisy)
    assert len(np.unique(whole)) == 3


def test_bias_is_fitted_per_row_and_removes_it(tiny_survey):
    rng = np.random.default_rng(2)
    truth = rng.uniform(2000, 4000, (6, *tiny_survey.velocity_shape))
    row_bias = np.linspace(-50, 80, tiny_survey.nz)[None, :, None]
    noise = rng.normal(0, 5, truth.shape)
    specs = pp.fit_specs([{"name": "bias"}], truth + row_bias + noise, truth, tiny_survey)
    np.testing.assert_allclose(specs[0]["offset"], row_bias.ravel(), atol=1.5)
    global_fit = pp.fit_specs([{"name": "bias", "per": "global"}], truth + 30, truth, tiny_survey)
    assert global_fit[0]["offset"] == pytest.approx(30)
    chain = pp.build_chain(specs, tiny_survey)
    np.testing.assert_allclose(chain(truth[0] + row_bias[0]), truth[0], atol=1.5)
    with pytest.raises(ConfigError, match="fit it on validation"):
        op("bias")


def test_lowpass_keeps_smooth_maps_and_removes_a_checkerboard():
    z, x = np.mgrid[0:32, 0:24]
    smooth = 2000 + 20.0 * z + 5.0 * x
    checker = 100.0 * (-1.0) ** (z + x)
    out = op("lowpass:cutoff=0.3")(smooth + checker)
    # The Nyquist checkerboard (amplitude 100) is gone; what is left is mild ringing of the ramp
    # at the corners, where the truncated spectrum meets the mirror extension's kink.
    assert np.abs(out - smooth).mean() < 5 and np.abs(out - smooth).max() < 20
    np.testing.assert_allclose(op("lowpass")(np.full((7, 9), 3000.0)), 3000.0, rtol=1e-6)


def test_gaussian_keeps_constants_and_reduces_variance():
    np.testing.assert_allclose(op("gaussian:sigma=2")(np.full((9, 9), 2500.0)), 2500.0)
    noise = np.random.default_rng(3).normal(3000, 100, (30, 30))
    assert op("gaussian:sigma=1.5")(noise).std() < 0.5 * noise.std()


def test_depth_trend_projects_onto_increasing_row_means():
    rng = np.random.default_rng(4)
    v = layered(speeds=(2500.0, 1800.0, 3400.0)) + rng.normal(0, 10, (20, 12))  # a slow layer
    out = op("depth_trend")(v)
    assert np.all(np.diff(out.mean(axis=1)) >= -1e-3)
    # Each row is shifted as a whole (lateral structure kept) ...
    shift = out - v
    np.testing.assert_allclose(shift, shift[:, :1] * np.ones((1, 12)), atol=1e-3)
    # ... and a map already satisfying the constraint is left alone (a projection).
    ok = layered()
    np.testing.assert_allclose(op("depth_trend")(ok), ok)
    # The projection is the closest such map: any other row-shift is farther (spot check).
    other = v + (np.sort(v.mean(axis=1)) - v.mean(axis=1))[:, None]
    assert np.linalg.norm(out - v) <= np.linalg.norm(other - v) + 1e-6


def test_max_gradient_bounds_the_vertical_step():
    v = layered()
    out = op("max_gradient:up=100,down=0")(v)
    steps = np.diff(out, axis=0)
    assert steps.max() <= 100 + 1e-3 and steps.min() >= -1e-3
    smooth = 2000 + 10.0 * np.arange(20)[:, None] * np.ones((1, 5))
    np.testing.assert_allclose(op("max_gradient:up=50")(smooth), smooth)


def test_family_selection_and_chain_order():
    v = layered() + 0.4
    chain = pp.build_chain([pp.parse_post("round:families=FlatVel_A+FlatVel_B"),
                            pp.parse_post("clip:vmin=2000,vmax=3000")], OPENFWI)
    assert chain(v, "FlatVel_B").max() == 3000 and np.all(chain(v, "FlatVel_B") % 1 == 0)
    assert chain(v, None).min() == 2000  # clip applies to all ...
    assert not np.all(chain(v, "CurveVel_A") % 1 == 0)  # ... rounding only to the listed families
