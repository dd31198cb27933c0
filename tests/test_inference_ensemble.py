"""Ensemble combination on hand-built arrays, and weight fits that recover the better member."""

from __future__ import annotations

import numpy as np
import pytest

from seisinv.errors import SeisinvError
from seisinv.inference import ensemble
from seisinv.inference.store import PredictionStore


def test_mean_median_weighted_by_hand():
    stack = np.array([[[1.0, 2.0]], [[3.0, 2.0]], [[8.0, 5.0]]])  # (3 members, 1, 2)
    mean, spread = ensemble.combine(stack, "mean")
    np.testing.assert_allclose(mean, [[4.0, 3.0]])
    np.testing.assert_allclose(spread, [[np.std([1, 3, 8]), np.std([2, 2, 5])]], rtol=1e-6)
    median, _ = ensemble.combine(stack, "median")
    np.testing.assert_allclose(median, [[3.0, 2.0]])
    weighted, _ = ensemble.combine(stack, "weighted", [1, 1, 2])  # normalised to 1/4, 1/4, 1/2
    np.testing.assert_allclose(weighted, [[0.25 * 1 + 0.25 * 3 + 0.5 * 8, 0.25 * 2 + 0.25 * 2 + 2.5]])


def test_single_member_has_zero_spread():
    v, s = ensemble.combine(np.full((1, 2, 2), 7.0), "median")
    np.testing.assert_allclose(v, 7.0)
    np.testing.assert_allclose(s, 0.0)


def test_bad_weights_and_methods_are_refused():
    stack = np.zeros((2, 1, 1))
    with pytest.raises(SeisinvError, match="2 ensemble member"):
        ensemble.combine(stack, "weighted", [1.0])
    with pytest.raises(SeisinvError, match="non-negative"):
        ensemble.combine(stack, "weighted", [1.0, -1.0])
    with pytest.raises(SeisinvError, match="needs weights"):
        ensemble.combine(stack, "weighted")
    with pytest.raises(SeisinvError, match="unknown ensemble method"):
        ensemble.combine(stack, "max")


@pytest.mark.parametrize("metric", ["mae", "mse", "mape"])
def test_fitted_weights_recover_the_better_member(metric):
    rng = np.random.default_rng(0)
    truth = rng.uniform(2.0, 4.0, (6, 8, 8))
    good = truth + rng.normal(0, 0.01, truth.shape)
    bad = truth + rng.normal(0.5, 0.3, truth.shape)
    weights = ensemble.fit_weights(np.stack([bad, good]), truth, metric)
    assert weights.sum() == pytest.approx(1.0)
    assert weights[1] > 0.95


def test_fitted_weights_blend_two_opposite_biases_equally():
    truth = np.full((2, 4, 4), 3.0)
    low, high = truth - 0.2, truth + 0.2  # the exact answer is the 50/50 blend
    weights = ensemble.fit_weights(np.stack([low, high]), truth, "mse")
    np.testing.assert_allclose(weights, [0.5, 0.5], atol=1e-3)


def test_ensemble_stores_writes_velocity_spread_and_resumes(tmp_path, tiny_survey):
    rng = np.random.default_rng(1)
    truth = {f"s{i}": rng.uniform(1500, 4500, tiny_survey.velocity_shape) for i in range(4)}
    members = []
    for k, bias in enumerate([0.0, 300.0]):
        store = PredictionStore(tmp_path / f"m{k}", tiny_survey)
        for sid, v in truth.items():
            store.write(sid, v + bias)
        members.append(store)
    families = {sid: ("flat" if i < 2 else "fault") for i, sid in enumerate(truth)}
    plan = ensemble.fit_plan(
        members, {s: (v, families[s]) for s, v in truth.items()}, per_family=True, min_family_samples=2
    )
    assert set(plan.weights) == {"*", "flat", "fault"}
    assert plan.weights["*"][0] > 0.95
    out = PredictionStore(tmp_path / "ens", tiny_survey)
    assert ensemble.ensemble_stores(members, out, plan, families, progress=False) == 4
    np.testing.assert_allclose(out.read("s0"), truth["s0"], atol=1.0)
    np.testing.assert_allclose(out.read_spread("s0"), 150.0, rtol=1e-4)
    assert ensemble.ensemble_stores(members, out, plan, families, progress=False) == 0
