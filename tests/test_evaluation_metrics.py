"""Metric functions against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seisinv import metrics
from seisinv.errors import DataError


def test_mae_rmse_mape_single_map_by_hand():
    pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    true = np.ones((2, 2))
    # |errors| = 0, 1, 2, 3
    assert metrics.mae(pred, true) == pytest.approx(1.5)
    assert metrics.rmse(pred, true) == pytest.approx(math.sqrt((0 + 1 + 4 + 9) / 4))
    assert metrics.mape(pred, true) == pytest.approx(1.5, rel=1e-6)


def test_mape_is_mean_of_per_sample_means_as_speed_structure_scores_it():
    true = np.stack([np.ones((2, 2)), np.full((2, 2), 4.0)])
    pred = np.stack([np.array([[1.0, 2.0], [3.0, 4.0]]), np.full((2, 2), 2.0)])
    assert metrics.mape_per_sample(pred, true) == pytest.approx([1.5, 0.5])
    assert metrics.mape(pred, true) == pytest.approx(1.0)
    # The epsilon keeps a zero truth finite: |0 - 1| / (0 + 1e-8) = 1e8.
    assert metrics.mape(np.ones((1, 1, 1)), np.zeros((1, 1, 1))) == pytest.approx(1e8)


def test_batch_rmse_is_root_of_pixel_mean_not_mean_of_roots():
    true = np.zeros((2, 1, 2))
    pred = np.stack([np.full((1, 2), 1.0), np.full((1, 2), 3.0)])
    assert metrics.rmse(pred, true) == pytest.approx(math.sqrt((1 + 9) / 2))


def test_metrics_accept_torch_tensors_and_float32():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert metrics.mae(pred, torch.ones(2, 2)) == pytest.approx(1.5)


def test_torch_inputs_give_torch_per_sample_values_equal_to_numpy():
    rng = np.random.default_rng(3)
    pred = rng.uniform(1500, 4500, (3, 14, 12)).astype(np.float32)
    true = rng.uniform(1500, 4500, (3, 14, 12)).astype(np.float32)
    for name in ("mae", "mse", "mape"):
        fn = getattr(metrics, f"{name}_per_sample")
        out = fn(torch.from_numpy(pred), torch.from_numpy(true))
        assert isinstance(out, torch.Tensor) and out.shape == (3,)
        np.testing.assert_allclose(out.numpy(), fn(pred, true), rtol=1e-12)
    out = metrics.ssim_per_sample(torch.from_numpy(pred), torch.from_numpy(true), 1500, 4500)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), metrics.ssim_per_sample(pred, true, 1500, 4500), rtol=1e-10)


def test_ssim_identical_maps_is_one():
    rng = np.random.default_rng(0)
    v = rng.uniform(1500, 4500, size=(3, 20, 24))
    assert metrics.ssim_per_sample(v, v, 1500, 4500) == pytest.approx([1.0, 1.0, 1.0])


def test_ssim_of_constant_maps_is_the_luminance_term_by_hand():
    # Normalised values 0.5 and 0.25: variances and covariance are 0, so
    # SSIM = (2 * 0.5 * 0.25 + C1) / (0.5**2 + 0.25**2 + C1) with C1 = 0.01**2.
    a = np.full((16, 16), 2.0)
    b = np.full((16, 16), 1.5)
    c1 = 0.01**2
    expected = (2 * 0.5 * 0.25 + c1) / (0.25 + 0.0625 + c1)
    assert metrics.ssim(a, b, vmin=1.0, vmax=3.0) == pytest.approx(expected)


def test_ssim_structure_term_by_hand_for_anticorrelated_maps():
    # An 11 x 11 map is covered by exactly one window. With p = 0.5 + d and t = 0.5 - d, where d
    # has zero gaussian-weighted mean, both local means are 0.5 (luminance term 1) and
    # cov = -var, so SSIM = (-2 var + C2) / (2 var + C2), var = sum(w * d**2).
    w2 = np.outer(metrics.gaussian_window(11, 1.5), metrics.gaussian_window(11, 1.5))
    d = 0.1 * np.random.default_rng(1).uniform(-1, 1, (11, 11))
    d -= (w2 * d).sum()
    var = (w2 * d * d).sum()
    c2 = 0.03**2
    value = metrics.ssim(0.5 + d, 0.5 - d, vmin=0.0, vmax=1.0)
    assert value == pytest.approx((-2 * var + c2) / (2 * var + c2), rel=1e-9)


def test_ssim_is_symmetric_and_drops_with_noise():
    rng = np.random.default_rng(2)
    v = np.cumsum(rng.uniform(0, 60, size=(30, 30)), axis=0) + 1500
    v = np.clip(v, 1500, 4500)
    noisy = v + rng.normal(0, 200, size=v.shape)
    noisier = v + rng.normal(0, 600, size=v.shape)
    s1 = metrics.ssim(noisy, v, 1500, 4500)
    assert s1 == pytest.approx(metrics.ssim(v, noisy, 1500, 4500))
    assert 1.0 > s1 > metrics.ssim(noisier, v, 1500, 4500)


def test_gaussian_window_is_normalised_and_symmetric():
    w = metrics.gaussian_window(11, 1.5)
    assert w.sum() == pytest.approx(1.0)
    assert np.allclose(w, w[::-1])
    assert w.argmax() == 5


def test_shape_mismatch_is_a_data_error():
    with pytest.raises(DataError, match="does not match"):
        metrics.mae(np.zeros((2, 2)), np.zeros((2, 3)))


def test_aggregate_combines_per_sample_records():
    recs = [
        metrics.sample_metrics(np.full((4, 4), 2.0), np.full((4, 4), 1.0), 0.0, 4.0),
        metrics.sample_metrics(np.full((4, 4), 4.0), np.full((4, 4), 1.0), 0.0, 4.0),
    ]
    summary = metrics.aggregate(recs)
    assert summary["n"] == 2
    assert summary["mae"] == pytest.approx(2.0)
    assert summary["rmse"] == pytest.approx(math.sqrt((1 + 9) / 2))
    assert summary["mape"] == pytest.approx(2.0)
