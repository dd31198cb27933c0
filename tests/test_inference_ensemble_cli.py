"""``seisinv ensemble`` with hill climbing, post-processing, nested ensembles, classifier families
and the refusals of members that lack samples or hold NaN."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from seisinv.cli.main import app
from seisinv.errors import DataError, SeisinvError
from seisinv.inference.ensemble_job import run_ensemble
from seisinv.inference.store import PredictionStore

runner = CliRunner()


@pytest.fixture
def stores(tmp_path, tiny_survey):
    """Truth and three members: low (-100), high (+100) and far (+900) m/s, on the tiny grid."""
    rng = np.random.default_rng(0)
    made = {name: PredictionStore(tmp_path / name, tiny_survey)
            for name in ("truth", "low", "high", "far")}
    for i in range(4):
        v = rng.uniform(2000, 4000, tiny_survey.velocity_shape).astype(np.float32)
        made["truth"].write(f"s{i}", v)
        for name, bias in (("low", -100), ("high", 100), ("far", 900)):
            made[name].write(f"s{i}", v + bias)
    return tmp_path


def invoke(*args):
    return runner.invoke(app, ["ensemble", *map(str, args)])


def test_hill_climb_fit_then_plan_on_other_predictions(stores):
    out = stores / "hc"
    result = invoke(stores / "far", stores / "low", stores / "high", "--method", "hill_climb",
                    "--fit-on", stores / "truth", "--out", out)
    assert result.exit_code == 0, result.output
    plan = json.loads((out / "ensemble.json").read_text())
    assert plan["method"] == "hill_climb"
    assert plan["weights"]["*"] == [0.0, 0.5, 0.5]
    np.testing.assert_allclose(PredictionStore(out).read("s1"),
                               PredictionStore(stores / "truth").read("s1"), atol=0.01)
    result = invoke(stores / "far", stores / "low", stores / "high", "--method", "hill_climb",
                    "--plan", out / "ensemble.json", "--out", stores / "hc2")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(PredictionStore(stores / "hc2").read("s2"),
                                  PredictionStore(out).read("s2"))


def test_post_bias_is_fitted_on_validation_and_reapplied(stores):
    out = stores / "biased"
    result = invoke(stores / "high", "--fit-on", stores / "truth", "--post", "bias:per=global",
                    "--post", "clip", "--out", out)
    assert result.exit_code == 0, result.output
    plan = json.loads((out / "ensemble.json").read_text())
    assert [s["name"] for s in plan["post"]] == ["bias", "clip"]
    assert plan["post"][0]["offset"] == pytest.approx(100, abs=0.01)
    truth = PredictionStore(stores / "truth")
    np.testing.assert_allclose(PredictionStore(out).read("s0"), truth.read("s0"), atol=0.01)
    # The fitted bias is reapplied to other predictions through --plan (here: the same ones).
    result = invoke(stores / "high", "--plan", out / "ensemble.json", "--out", stores / "again")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(PredictionStore(stores / "again").read("s2"),
                                  PredictionStore(out).read("s2"))
    # Without validation data a bias cannot be fitted.
    result = invoke(stores / "high", "--post", "bias", "--out", stores / "nofit")
    assert isinstance(result.exception, SeisinvError) and "--fit-on" in str(result.exception)


def test_ensemble_of_ensembles_with_fixed_weights(stores):
    assert invoke(stores / "low", stores / "high", "--out", stores / "inner").exit_code == 0
    result = invoke(stores / "inner", stores / "far", "--method", "weighted", "--weights",
                    "0.6,0.4", "--out", stores / "outer")
    assert result.exit_code == 0, result.output
    expected = PredictionStore(stores / "truth").read("s3") + 0.4 * 900
    np.testing.assert_allclose(PredictionStore(stores / "outer").read("s3"), expected, atol=0.05)


def test_refusals_name_the_member_and_samples(stores, tiny_survey):
    short = PredictionStore(stores / "short", tiny_survey)
    short.write("s0", PredictionStore(stores / "low").read("s0"))
    result = invoke(stores / "low", stores / "short", "--out", stores / "e")
    assert isinstance(result.exception, DataError)
    assert "short lacks 3 sample(s)" in str(result.exception) and "s1, s2, s3" in str(result.exception)
    nan = PredictionStore(stores / "nan", tiny_survey)
    for i in range(4):
        v = PredictionStore(stores / "low").read(f"s{i}")
        if i == 2:
            v[0, 0] = np.nan
        nan.write(f"s{i}", v)
    result = invoke(stores / "low", stores / "nan", "--out", stores / "e")
    assert isinstance(result.exception, DataError) and "sample 's2'" in str(result.exception)
    result = invoke(stores / "low", stores / "high", "--out", stores / "low")
    assert isinstance(result.exception, SeisinvError) and "is the input" in str(result.exception)
    result = invoke(stores / "low", "--classifier", stores / "run", "--out", stores / "e")
    assert isinstance(result.exception, SeisinvError) and "--per-family" in str(result.exception)
    result = invoke(stores / "low", "--method", "hill_climb", "--out", stores / "e")
    assert isinstance(result.exception, SeisinvError) and "--fit-on" in str(result.exception)


class MeanClassifier(torch.nn.Module):
    """Stand-in family classifier: "fast" when the map's mean exceeds 3000 m/s."""

    families = ["slow", "fast"]

    def forward(self, velocity):
        mean = velocity.mean(dim=(1, 2)) - 3000.0
        return torch.stack([-mean, mean], dim=1)


def test_classifier_families_go_into_the_manifest_and_pick_weights(tmp_path, tiny_survey):
    shape = tiny_survey.velocity_shape
    members = [PredictionStore(tmp_path / n, tiny_survey) for n in ("a", "b")]
    for k, store in enumerate(members):
        store.write("t_slow", np.full(shape, 2000.0 + 100 * k))
        store.write("t_fast", np.full(shape, 4000.0 + 100 * k))
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"method": "weighted", "weights": {
        "*": [0.5, 0.5], "slow": [1.0, 0.0], "fast": [0.0, 1.0]}}))
    result = run_ensemble([tmp_path / "a", tmp_path / "b"], tmp_path / "out", method="weighted",
                          plan=plan, per_family=True, classifier=MeanClassifier(), progress=False)
    assert result.predicted_families == {"t_slow": "slow", "t_fast": "fast"}
    out = PredictionStore(tmp_path / "out")
    assert out.meta["info"]["predicted_families"] == {"t_slow": "slow", "t_fast": "fast"}
    np.testing.assert_allclose(out.read("t_slow"), 2000.0)
    np.testing.assert_allclose(out.read("t_fast"), 4100.0)
    # A nested ensemble inherits the families its member recorded (no classifier needed).
    run_ensemble([tmp_path / "out", tmp_path / "b"], tmp_path / "outer", method="weighted",
                 plan=plan, per_family=True, progress=False)
    np.testing.assert_allclose(PredictionStore(tmp_path / "outer").read("t_slow"), 2000.0)
