"""The predict/ensemble/submit/evaluate/report commands on small prediction directories."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from seisinv.cli.main import app
from seisinv.errors import SeisinvError
from seisinv.inference.store import PredictionStore
from seisinv.inference.submission import read_kaggle_gwi
from seisinv.survey import OPENFWI

runner = CliRunner()


@pytest.fixture
def stores(tmp_path):
    """Truth and two members (one good, one biased by +400 m/s) on the OpenFWI grid."""
    rng = np.random.default_rng(0)
    truth = PredictionStore(tmp_path / "truth", OPENFWI)
    good = PredictionStore(tmp_path / "good", OPENFWI)
    bad = PredictionStore(tmp_path / "bad", OPENFWI)
    for i in range(3):
        v = rng.uniform(2000, 4000, OPENFWI.velocity_shape).astype(np.float32)
        truth.write(f"s{i}", v)
        good.write(f"s{i}", v + 10)
        bad.write(f"s{i}", v + 400)
    return tmp_path


def test_ensemble_fit_on_then_evaluate_and_submit(stores):
    out = stores / "ens"
    result = runner.invoke(app, ["ensemble", str(stores / "good"), str(stores / "bad"),
                                 "--method", "weighted", "--fit-on", str(stores / "truth"),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    plan = json.loads((out / "ensemble.json").read_text())
    assert plan["weights"]["*"][0] > 0.95
    assert PredictionStore(out).read_spread("s0") is not None

    # The fitted plan applies to other predictions of the same members (e.g. the test set).
    result = runner.invoke(app, ["ensemble", str(stores / "good"), str(stores / "bad"),
                                 "--method", "weighted", "--plan", str(out / "ensemble.json"),
                                 "--out", str(stores / "ens2")])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(PredictionStore(stores / "ens2").read("s1"),
                               PredictionStore(out).read("s1"))

    result = runner.invoke(app, ["evaluate", str(out), str(stores / "bad"), "--truth",
                                 str(stores / "truth"), "--json", str(stores / "m.json")])
    assert result.exit_code == 0, result.output
    metrics = {m["name"]: m["overall"] for m in json.loads((stores / "m.json").read_text())}
    assert metrics["ens"]["mae"] < 20 < 390 < metrics["bad"]["mae"] < 410

    result = runner.invoke(app, ["submit", str(out), "--format", "kaggle-gwi", "--out",
                                 str(stores / "sub.csv")])
    assert result.exit_code == 0, result.output
    assert sorted(read_kaggle_gwi(stores / "sub.csv")) == ["s0", "s1", "s2"]

    result = runner.invoke(app, ["report", str(out), "--truth", str(stores / "truth"),
                                 "--predictions", str(stores / "bad"), "--samples", "1"])
    assert result.exit_code == 0, result.output
    assert (out / "report" / "index.html").is_file()


def test_bad_arguments_raise_seisinv_errors(stores):
    result = runner.invoke(app, ["ensemble", str(stores / "good"), "--method", "weighted",
                                 "--out", str(stores / "e")])
    assert isinstance(result.exception, SeisinvError)
    result = runner.invoke(app, ["submit", str(stores / "good"), "--format", "speed-structure",
                                 "--out", str(stores / "s.npz")])
    assert isinstance(result.exception, SeisinvError) and "needs maps in km/s" in str(result.exception)
    assert not (stores / "s.npz").exists()
    result = runner.invoke(app, ["predict", "--data", str(stores), "--out", str(stores / "p")])
    assert isinstance(result.exception, SeisinvError) and "--run" in str(result.exception)


def test_ensemble_refuses_to_resume_into_another_ensemble(stores):
    out = stores / "ens"
    args = ["ensemble", str(stores / "good"), str(stores / "bad"), "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, args).exit_code == 0          # the same command resumes
    result = runner.invoke(app, [*args, "--method", "median"])
    assert isinstance(result.exception, SeisinvError)
    assert '"mean" (now "median")' in str(result.exception)
    result = runner.invoke(app, ["ensemble", str(stores / "good"), "--out", str(out)])
    assert isinstance(result.exception, SeisinvError) and "members" in str(result.exception)
