"""Pseudo-labels: predicted maps forward-modelled into a synthetic dataset that reads back."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from seisinv.cli.main import app
from seisinv.data import open_dataset
from seisinv.errors import DataError, SeisinvError
from seisinv.inference.pseudo_label import make_pseudo_labels, read_rounds
from seisinv.inference.store import PredictionStore
from seisinv.io import save_npy
from seisinv.physics import simulate


@pytest.fixture
def small(tiny_survey):
    """24 x 24 grid, 100 time samples, 3 shots, 8 receivers: a physics call takes milliseconds."""
    return tiny_survey.replace(
        name="small", nz=24, nx=24, nt=100, source_x=(0.0, 110.0, 230.0),
        receiver_x=tuple(30.0 * i for i in range(8)),
    )


@pytest.fixture
def unlabelled(tmp_path, small):
    """Three Kaggle-style test inputs ``<id>.npy`` and a prediction directory for them."""
    rng = np.random.default_rng(0)
    data = tmp_path / "test"
    store = PredictionStore(tmp_path / "pred", small, info={"predicted_families":
                                                            {"a1": "FlatVel_A"}})
    for k, sample_id in enumerate(("a1", "b2", "c3")):
        save_npy(data / f"{sample_id}.npy", rng.standard_normal(small.gather_shape).astype(np.float32))
        v = np.full(small.velocity_shape, 2000.0 + 500 * k, np.float32)
        v[12:] += 800
        if sample_id == "c3":
            v[0, 0] = 99999.0  # an overshooting prediction is clipped to the survey range
        store.write(sample_id, v)
    return tmp_path, data


def test_pseudo_labels_are_physics_consistent_synthetic_pairs(unlabelled, small):
    root, data = unlabelled
    report = make_pseudo_labels(root / "pred", data, None, root / "r1", "cpu", round_index=1,
                                per_file=2, progress=False)
    assert (report.count, report.written, report.skipped) == (3, 3, 0)
    source = open_dataset(root / "r1", small)
    assert source.ids == ["pl1-a1", "pl1-b2", "pl1-c3"]
    sample = source[0]
    assert sample.synthetic and sample.family == "FlatVel_A" and source[1].family is None
    predicted = PredictionStore(root / "pred").read("a1")
    np.testing.assert_allclose(sample.velocity, predicted)
    # The gathers are the physics of the stored map, not the observed input.
    expected = simulate(torch.as_tensor(predicted[None]), small, device="cpu").numpy()[0]
    np.testing.assert_allclose(sample.gathers, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
    assert source[2].velocity.max() == small.vmax
    record = json.loads((root / "r1" / "pseudo_label.json").read_text())
    assert record["round"] == 1 and record["count"] == 3 and record["complete"]
    assert record["data"] == str(data.resolve())
    # Rerunning resumes (nothing redone); another round into the same folder is refused.
    again = make_pseudo_labels(root / "pred", data, None, root / "r1", "cpu", per_file=2,
                               progress=False)
    assert (again.written, again.skipped) == (0, 3)
    with pytest.raises(SeisinvError, match="another pseudo-label round: round=1"):
        make_pseudo_labels(root / "pred", data, None, root / "r1", "cpu", round_index=2,
                           per_file=2, progress=False)
    assert [r["round"] for r in read_rounds([root / "r1"])] == [1]


def test_map_augmentation_adds_seeded_copies(unlabelled, small):
    root, data = unlabelled

    def shift(v, rng):
        return v + rng.uniform(50, 100)

    make_pseudo_labels(root / "pred", data, None, root / "aug", "cpu", map_augment=shift,
                       copies=1, progress=False)
    source = open_dataset(root / "aug", small)
    assert len(source) == 6 and "pl1-a1-a0" in source.ids
    base = source[source.ids.index("pl1-a1")].velocity
    copy = source[source.ids.index("pl1-a1-a0")].velocity
    assert 50 <= float((copy - base).mean()) <= 100


def test_missing_and_nan_predictions_are_refused(unlabelled, small):
    root, data = unlabelled
    save_npy(data / "d4.npy", np.zeros(small.gather_shape, np.float32))
    with pytest.raises(DataError, match=r"no prediction for 1 input\(s\) .*: d4"):
        make_pseudo_labels(root / "pred", data, None, root / "x", "cpu", progress=False)
    bad = np.full(small.velocity_shape, np.nan, np.float32)
    PredictionStore(root / "pred").write("d4", bad)
    with pytest.raises(DataError, match="'d4' holds NaN"):
        make_pseudo_labels(root / "pred", data, None, root / "x", "cpu", progress=False)


def test_cli_pseudo_label(unlabelled, small):
    root, data = unlabelled
    result = CliRunner().invoke(app, ["pseudo-label", "--pred", str(root / "pred"), "--data",
                                      str(data), "--out", str(root / "cli"), "--round", "2",
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert open_dataset(root / "cli", small).ids == ["pl2-a1", "pl2-b2", "pl2-c3"]
    result = CliRunner().invoke(app, ["pseudo-label", "--pred", str(root / "pred"), "--data",
                                      str(data), "--out", str(root / "z"), "--round", "0"])
    assert isinstance(result.exception, SeisinvError) and "--round" in str(result.exception)


def test_geology_transform_copies_when_available(unlabelled, small):
    pytest.importorskip("seisinv.geology.transform")
    root, data = unlabelled
    result = CliRunner().invoke(app, ["pseudo-label", "--pred", str(root / "pred"), "--data",
                                      str(data), "--out", str(root / "tf"), "--augment-copies", "1",
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    source = open_dataset(root / "tf", small)
    assert len(source) == 6
    copy = source[source.ids.index("pl1-b2-a0")].velocity
    base = source[source.ids.index("pl1-b2")].velocity
    assert copy.min() >= base.min() - 1e-3 and copy.max() <= base.max() + 1e-3
