"""Evaluation of prediction directories, baselines, and the HTML report's references."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from seisinv.evaluation import baselines
from seisinv.evaluation.evaluate import evaluate_store, metrics_markdown, metrics_table
from seisinv.evaluation.report import ReportInputs, choose_samples, write_report
from seisinv.evaluation.truth import TruthRecord, iter_truth, load_truth
from seisinv.inference.store import PredictionStore


@pytest.fixture
def labelled(tiny_survey):
    """Six labelled maps, two families, increasing with depth (1500..4500 m/s)."""
    rng = np.random.default_rng(0)
    depth = np.linspace(1800, 4000, tiny_survey.nz)[:, None]
    records = {}
    for i in range(6):
        v = np.clip(depth + rng.normal(0, 150, tiny_survey.velocity_shape), 1500, 4500)
        records[f"s{i}"] = TruthRecord(f"s{i}", v.astype(np.float32), "flat" if i % 2 else "fault")
    return records


def test_evaluate_store_scores_per_family_and_reports_missing(tmp_path, tiny_survey, labelled):
    store = PredictionStore(tmp_path / "pred", tiny_survey)
    for sid, rec in list(labelled.items())[:5]:
        store.write(sid, rec.velocity + (100.0 if rec.family == "flat" else 0.0))
    result = evaluate_store(store, labelled.values())
    assert result.missing == ["s5"]
    assert result.families["fault"]["mae"] == pytest.approx(0.0)
    assert result.families["flat"]["mae"] == pytest.approx(100.0, rel=1e-5)
    assert result.families["flat"]["n"] == 2 and result.overall["n"] == 5
    assert result.overall["mae"] == pytest.approx(200.0 / 5, rel=1e-5)
    assert result.families["fault"]["ssim"] == pytest.approx(1.0)
    assert "| pred | 5 |" in metrics_markdown([result])
    assert metrics_table([result]).row_count == 3


def test_truth_from_a_prediction_directory(tmp_path, tiny_survey, labelled):
    store = PredictionStore(tmp_path / "ref", tiny_survey)
    store.write("s0", labelled["s0"].velocity)
    records = list(iter_truth(tmp_path / "ref"))
    assert [r.id for r in records] == ["s0"]
    np.testing.assert_array_equal(load_truth(tmp_path / "ref")["s0"].velocity, labelled["s0"].velocity)


def test_baselines_by_hand(tiny_survey):
    a = np.full(tiny_survey.velocity_shape, 2000.0)
    b = np.full(tiny_survey.velocity_shape, 3000.0)
    b[:, :4] = 4000.0
    np.testing.assert_allclose(baselines.mean_map([a, b])[0, :5], [3000, 3000, 3000, 3000, 2500])
    profile = baselines.depth_profile([a, b], tiny_survey)
    expected = (2000 + (4 * 4000 + 28 * 3000) / 32) / 2
    np.testing.assert_allclose(profile, expected, rtol=1e-6)


def test_linear_depth_profile_recovers_a_linear_law(tiny_survey):
    depth = np.arange(tiny_survey.nz) * tiny_survey.dz
    law = 1600.0 + 2.5 * depth
    maps = [np.repeat(law[:, None], tiny_survey.nx, 1) + d for d in (-50.0, 50.0)]
    fitted = baselines.depth_profile(maps, tiny_survey, degree=1)
    np.testing.assert_allclose(fitted[:, 7], law, rtol=1e-5)


def test_baseline_store_is_a_prediction_directory(tmp_path, tiny_survey, labelled):
    maps = baselines.fit_baselines([r.velocity for r in labelled.values()], tiny_survey)
    store = baselines.write_baseline(tmp_path / "b", tiny_survey, maps["depth-profile"], ["x", "y"], "depth-profile")
    assert PredictionStore(tmp_path / "b").ids() == ["x", "y"]
    assert "baseline" in json.loads((tmp_path / "b" / "manifest.json").read_text())["source"]
    np.testing.assert_array_equal(store.read("y"), maps["depth-profile"])


def test_choose_samples_takes_one_per_family_first(labelled):
    assert choose_samples(sorted(labelled), labelled, 2) == ["s0", "s1"]
    assert choose_samples(["b", "a"], None, 1) == ["b"]


def test_report_html_references_only_existing_files(tmp_path, tiny_survey, labelled):
    run = tmp_path / "run"
    run.mkdir()
    lines = [json.dumps({"epoch": e, "train_loss": 1.0 / (e + 1), "val_mae": 300 - 10 * e}) for e in range(5)]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\nnot json\n")
    store = PredictionStore(tmp_path / "pred", tiny_survey)
    for sid, rec in labelled.items():
        store.write(sid, rec.velocity + 50.0, spread=np.full(tiny_survey.velocity_shape, 20.0))
    evaluation = evaluate_store(store, labelled.values())
    qc = {"threshold": 0.75, "n_flagged": 1, "median_misfit": 0.4,
          "samples": [{"id": "s0", "misfit": 0.9, "flagged": True, "per_shot": [0.9]}]}
    gathers = {"s0": np.random.default_rng(0).normal(size=tiny_survey.gather_shape).astype(np.float32)}
    index = write_report(
        tmp_path / "report",
        ReportInputs(predictions={"pred": store}, truth=labelled, evaluations=[evaluation],
                     run_dir=run, gathers=gathers, qc=qc, n_samples=2, notes=["note <b>"]),
    )
    page = index.read_text()
    refs = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page)
    assert len(refs) >= 5  # mae bars, training curves, 2 samples, 1 gathers
    for ref in refs:
        assert not ref.startswith(("/", "http")), ref
        assert (index.parent / ref).is_file(), ref
    assert "training.png" in page and "gathers_s0.png" in page and "FLAG" in page
    assert "note &lt;b&gt;" in page
    assert (index.parent / "metrics.json").is_file()


def test_report_for_a_run_directory_draws_training_curves(tmp_path):
    from seisinv.errors import DataError
    from seisinv.evaluation.report import report_for

    run = tmp_path / "run"
    run.mkdir()
    records = [{"kind": "train", "step": s, "loss": 1.0 / s, "lr": 1e-3} for s in range(1, 6)]
    records.append({"kind": "val", "step": 5, "loss": 0.3, "mae": 250.0, "families": {"flat": {}}})
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    index = report_for(run)
    assert index == run / "report" / "index.html"
    assert (run / "report" / "figures" / "training.png").is_file()
    with pytest.raises(DataError, match="neither a run directory"):
        report_for(tmp_path / "nothing")
