"""Hill climbing, member checks (missing samples, NaN), per-family weights through a classifier,
ensembles of ensembles and post-processing inside the ensemble stage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seisinv.errors import DataError, SeisinvError
from seisinv.inference import ensemble
from seisinv.inference.postprocess import build_chain
from seisinv.inference.store import PredictionStore


def test_methods_table_is_the_one_list():
    assert list(ensemble.METHODS) == ["mean", "median", "weighted", "hill_climb"]
    assert ensemble.get_method("hill_climb").fit is ensemble.hill_climb_weights
    with pytest.raises(SeisinvError, match="known: mean, median, weighted, hill_climb"):
        ensemble.get_method("vote")


def test_hill_climb_picks_the_complementary_pair_and_skips_the_bad_member():
    truth = np.full((4, 3, 3), 3000.0)
    low, high = truth - 100, truth + 100        # opposite biases: their mean is exact
    bad = truth + 900
    single_best = truth + 60                    # the best single member, but biased
    members = np.stack([bad, low, high, single_best])
    weights = ensemble.hill_climb_weights(members, truth, "mae")
    assert weights[0] == 0
    blend = np.tensordot(weights, members, 1)
    # Never worse than the best single member (where the greedy search starts) ...
    assert np.abs(blend - truth).mean() <= 60
    # ... and here much better, by mixing the low and high members.
    assert np.abs(blend - truth).mean() < 30
    assert weights.sum() == pytest.approx(1.0)
    # Weights are counts over a bag of at most 1 + max_rounds members.
    assert any(np.allclose(weights * n, np.round(weights * n)) for n in range(1, 102))


def test_hill_climb_with_one_good_member_keeps_only_it():
    rng = np.random.default_rng(0)
    truth = rng.uniform(2000, 4000, (3, 4, 4))
    weights = ensemble.hill_climb_weights(np.stack([truth + 500, truth + 1, truth - 700]), truth)
    np.testing.assert_array_equal(weights, [0.0, 1.0, 0.0])


def _stores(root, survey, maps_by_member):
    stores = []
    for name, maps in maps_by_member.items():
        store = PredictionStore(root / name, survey)
        for sample_id, v in maps.items():
            store.write(sample_id, v)
        stores.append(store)
    return stores


def test_missing_samples_and_nan_are_refused_by_name(tmp_path, tiny_survey):
    v = np.full(tiny_survey.velocity_shape, 2500.0, np.float32)
    a, b = _stores(tmp_path, tiny_survey, {"a": {"s0": v, "s1": v, "s2": v}, "b": {"s0": v}})
    out = PredictionStore(tmp_path / "out", tiny_survey)
    with pytest.raises(DataError, match=r"member .*b lacks 2 sample\(s\) .*: s1, s2"):
        ensemble.ensemble_stores([a, b], out, ensemble.EnsemblePlan(), progress=False)
    assert out.ids() == []
    bad = v.copy()
    bad[3, 4] = np.nan
    a, b = _stores(tmp_path / "n", tiny_survey, {"a": {"s0": v}, "b": {"s0": bad}})
    with pytest.raises(DataError, match=r"member .*b: sample 's0' holds 1 NaN/inf"):
        ensemble.ensemble_stores([a, b], out, ensemble.EnsemblePlan(), progress=False)
    with pytest.raises(DataError, match="NaN/inf"):
        ensemble.fit_plan([a, b], {"s0": (v, None)})
    assert out.ids() == []


class StandIn(torch.nn.Module):
    """A family classifier stand-in: "fast" when the map's mean exceeds 3000 m/s."""

    families = ["slow", "fast"]

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(1.0))

    def forward(self, velocity):
        mean = velocity.mean(dim=(1, 2)) - 3000.0
        return torch.stack([-mean, mean], dim=1) * self.scale


def test_classifier_families_select_per_family_weights(tmp_path, tiny_survey):
    shape = tiny_survey.velocity_shape
    maps_a = {"slow1": np.full(shape, 2000.0), "fast1": np.full(shape, 4000.0)}
    maps_b = {k: v + 200 for k, v in maps_a.items()}
    stores = _stores(tmp_path, tiny_survey, {"a": maps_a, "b": maps_b})
    families = ensemble.classify_families(stores, StandIn(), batch=1)
    assert families == {"slow1": "slow", "fast1": "fast"}
    plan = ensemble.EnsemblePlan("weighted", {"*": [0.5, 0.5], "slow": [1, 0], "fast": [0, 1]})
    out = PredictionStore(tmp_path / "out", tiny_survey)
    ensemble.ensemble_stores(stores, out, plan, families, progress=False)
    np.testing.assert_allclose(out.read("slow1"), 2000.0)   # member a only
    np.testing.assert_allclose(out.read("fast1"), 4200.0)   # member b only

    class Broken(StandIn):
        families = ["a", "b", "c"]

    with pytest.raises(SeisinvError, match=r"logits of shape \(2, 2\), expected \(2, 3\)"):
        ensemble.classify_families(stores, Broken())
    with pytest.raises(SeisinvError, match="no 'families'"):
        ensemble.classify_families(stores, torch.nn.Linear(2, 2))


def test_ensemble_of_ensembles_with_fixed_weights_and_post(tmp_path, tiny_survey):
    shape = tiny_survey.velocity_shape
    m = _stores(tmp_path, tiny_survey, {f"m{k}": {"s": np.full(shape, 2000.0 + 100 * k)}
                                        for k in range(4)})
    inner1 = PredictionStore(tmp_path / "e1", tiny_survey)
    inner2 = PredictionStore(tmp_path / "e2", tiny_survey)
    ensemble.ensemble_stores(m[:2], inner1, ensemble.EnsemblePlan("mean"), progress=False)
    ensemble.ensemble_stores(m[2:], inner2, ensemble.EnsemblePlan("mean"), progress=False)
    outer = PredictionStore(tmp_path / "outer", tiny_survey)
    plan = ensemble.EnsemblePlan("weighted", {"*": [0.6, 0.4]})
    post = build_chain([{"name": "round", "step": 100}], tiny_survey)
    ensemble.ensemble_stores([inner1, inner2], outer, plan, progress=False, post=post)
    # 0.6 x 2050 + 0.4 x 2250 = 2130, rounded to a multiple of 100.
    np.testing.assert_allclose(outer.read("s"), 2100.0)
    np.testing.assert_allclose(outer.read_spread("s"), 100.0)  # std of 2050 and 2250


def test_hill_climb_initial_bag_and_search_past_a_rise():
    rng = np.random.default_rng(3)
    truth = np.full((4, 8, 8), 3000.0)
    noisy = truth + rng.normal(0, 50, truth.shape)   # best single member (MAE ~40)
    members = np.stack([truth + 100, noisy, truth - 100])
    # The initial bag: the best member alone, or the init best ones (sorted initialisation).
    np.testing.assert_array_equal(ensemble.hill_climb_weights(members, truth, max_rounds=0), [0, 1, 0])
    np.testing.assert_allclose(ensemble.hill_climb_weights(members, truth, init=3, max_rounds=0),
                               [1 / 3] * 3)
    # Adding either biased member alone makes the blend worse; the search keeps going past that
    # rise and finds the pair whose biases cancel.
    weights = ensemble.hill_climb_weights(members, truth)
    assert np.abs(np.tensordot(weights, members, 1) - truth).mean() < 20
    with pytest.raises(SeisinvError, match="init >= 1"):
        ensemble.hill_climb_weights(members, truth, init=0)
