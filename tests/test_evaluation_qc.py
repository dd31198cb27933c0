"""Physics check: the true velocity passes, a wrong one is flagged (tiny survey, deepwave)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import ListSource

from seisinv.data.sample import Sample
from seisinv.evaluation.qc import qc_store, relative_misfit, write_qc
from seisinv.inference.store import PredictionStore


def layered(survey, v_top, v_bottom):
    v = np.full(survey.velocity_shape, v_top, np.float32)
    v[survey.nz // 2 :] = v_bottom
    return v


def test_relative_misfit_by_hand():
    obs = np.zeros((1, 2, 2, 2))
    obs[0, 0] = [[3.0, 0.0], [0.0, 4.0]]  # norm 5
    obs[0, 1] = [[1.0, 0.0], [0.0, 0.0]]  # norm 1
    sim = obs.copy()
    sim[0, 1] = 0.0  # shot 1 entirely missed
    per_sample, per_shot = relative_misfit(sim, obs)
    np.testing.assert_allclose(per_shot, [[0.0, 1.0]])
    np.testing.assert_allclose(per_sample, [np.sqrt(1.0 / 26.0)])
    # A scaled copy is perfect once the amplitude is fitted.
    per_sample, _ = relative_misfit(0.5 * obs, obs, fit_amplitude=True)
    np.testing.assert_allclose(per_sample, [0.0], atol=1e-12)


def test_qc_passes_the_true_velocity_and_flags_a_wrong_one(tmp_path, tiny_survey):
    from seisinv.physics import simulate

    truth = np.stack([layered(tiny_survey, 2000, 3000), layered(tiny_survey, 2500, 4000)])
    gathers = simulate(truth, tiny_survey, device="cpu").numpy()
    source = ListSource(
        [Sample(f"s{i}", gathers[i], truth[i], survey="tiny") for i in range(2)], tiny_survey
    )
    store = PredictionStore(tmp_path / "pred", tiny_survey)
    store.write("s0", truth[0])
    store.write("s1", np.full(tiny_survey.velocity_shape, 4400.0))  # far too fast
    result = qc_store(store, source, threshold=0.3, device="cpu", progress=False)
    by_id = {s["id"]: s for s in result["samples"]}
    assert by_id["s0"]["misfit"] < 1e-4 and not by_id["s0"]["flagged"]
    assert by_id["s1"]["misfit"] > 0.5 and by_id["s1"]["flagged"]
    assert result["n_flagged"] == 1 and len(by_id["s0"]["per_shot"]) == tiny_survey.n_shots
    json_path, csv_path = write_qc(result, tmp_path / "qc")
    assert json.loads(json_path.read_text())["n_flagged"] == 1
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("id,misfit,flagged,shot_0") and len(lines) == 3


def test_qc_reports_samples_without_prediction(tmp_path, tiny_survey):
    v = layered(tiny_survey, 2000, 3000)
    source = ListSource([Sample("a", np.zeros(tiny_survey.gather_shape, np.float32), v)], tiny_survey)
    store = PredictionStore(tmp_path / "pred", tiny_survey)
    result = qc_store(store, source, device="cpu", progress=False)
    assert result["missing"] == ["a"] and result["samples"] == []


@pytest.mark.parametrize("shift_cells", [1])
def test_small_velocity_error_gives_small_misfit(tmp_path, tiny_survey, shift_cells):
    from seisinv.physics import simulate

    truth = layered(tiny_survey, 2000, 3000)
    near = np.roll(truth, shift_cells, axis=0)  # interface one cell deeper
    gathers = simulate(truth[None], tiny_survey, device="cpu").numpy()
    source = ListSource([Sample("a", gathers[0], truth)], tiny_survey)
    store = PredictionStore(tmp_path / "pred", tiny_survey)
    store.write("a", near)
    wrong = PredictionStore(tmp_path / "wrong", tiny_survey)
    wrong.write("a", np.full(tiny_survey.velocity_shape, 4400.0))
    close = qc_store(store, source, device="cpu", progress=False)["samples"][0]["misfit"]
    far = qc_store(wrong, source, device="cpu", progress=False)["samples"][0]["misfit"]
    assert close < far
