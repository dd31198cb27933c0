"""Batched, resumable prediction with test-time augmentation on toy models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ListSource

from seisinv.data.sample import Sample
from seisinv.errors import SeisinvError
from seisinv.inference.predict import open_prediction_store, parse_tta, predict, tta_views
from seisinv.inference.store import PredictionStore
from seisinv.survey import OPENFWI

# Mirror-symmetric toy survey: sources at cells 0 and 15 (mirrors of each other), one receiver per
# cell, so the flip of the gathers is exact and nx == receivers.
TOY = OPENFWI.replace(
    name="toy", nz=6, nx=16, nt=20, source_x=(0.0, 150.0), receiver_x=tuple(10.0 * i for i in range(16))
)


class ToyRun:
    """velocity[z, x] = vmin + 100 z + energy of receiver x (summed over shots and time):
    flip-equivariant (reversing receivers and swapping the two shots reverses the columns)."""

    survey = TOY

    def __init__(self, asymmetric: bool = False):
        self.asymmetric = asymmetric
        self.calls = 0

    def predict(self, gathers):
        self.calls += 1
        g = torch.as_tensor(gathers)
        energy = g.abs().sum(dim=(1, 2))  # (b, receivers)
        if self.asymmetric:  # weight shot 0 only: no longer equivariant
            energy = g[:, 0].abs().sum(dim=1) * torch.linspace(0, 1, g.shape[-1])
        z = torch.arange(TOY.nz, dtype=torch.float32)[None, :, None]
        return TOY.vmin + 100 * z + energy[:, None, :]


@pytest.fixture
def source():
    rng = np.random.default_rng(0)
    samples = [Sample(f"id{i}", rng.normal(size=TOY.gather_shape).astype(np.float32)) for i in range(5)]
    return ListSource(samples, TOY)


def test_flip_tta_of_an_equivariant_model_equals_the_plain_prediction(tmp_path, source):
    plain = PredictionStore(tmp_path / "plain", TOY)
    flipped = PredictionStore(tmp_path / "flip", TOY)
    assert predict(ToyRun(), source, plain, batch=2, progress=False) == 5
    assert predict(ToyRun(), source, flipped, tta=["flip"], batch=2, progress=False) == 5
    for sid in source.ids:
        np.testing.assert_allclose(flipped.read(sid), plain.read(sid), rtol=1e-6)


def test_flip_tta_changes_a_non_equivariant_model(tmp_path, source):
    plain = PredictionStore(tmp_path / "plain", TOY)
    flipped = PredictionStore(tmp_path / "flip", TOY)
    predict(ToyRun(asymmetric=True), source, plain, progress=False)
    predict(ToyRun(asymmetric=True), source, flipped, tta=["flip"], progress=False)
    assert not np.allclose(flipped.read("id0"), plain.read("id0"))


def test_prediction_resumes_and_batches(tmp_path, source):
    store = PredictionStore(tmp_path / "p", TOY)
    run = ToyRun()
    store.write("id1", np.full(TOY.velocity_shape, 2000.0))  # already done: must be kept
    assert predict(run, source, store, batch=3, progress=False) == 4
    assert run.calls == 2  # 4 samples in batches of 3
    np.testing.assert_allclose(store.read("id1"), 2000.0)
    assert predict(run, source, store, progress=False) == 0
    assert store.ids() == [f"id{i}" for i in range(5)]


def test_noise_and_scale_views_are_deterministic_and_averaged(tmp_path, source):
    views = tta_views(["flip", "noise", "scale"], TOY)
    assert [v.name for v in views] == ["identity", "flip", "noise-0", "noise-1", "scale-0.9", "scale-1.1"]
    a = PredictionStore(tmp_path / "a", TOY)
    b = PredictionStore(tmp_path / "b", TOY)
    predict(ToyRun(), source, a, tta=["noise", "scale"], progress=False)
    predict(ToyRun(), source, b, tta=["noise", "scale"], batch=1, progress=False)
    np.testing.assert_array_equal(a.read("id3"), b.read("id3"))


def test_parse_tta_and_errors(tmp_path, source):
    assert parse_tta("flip,noise") == ["flip", "noise"]
    assert parse_tta("none") == [] and parse_tta(None) == []
    with pytest.raises(SeisinvError, match="unknown test-time augmentation 'mirror'"):
        parse_tta("mirror")
    other = PredictionStore(tmp_path / "o", OPENFWI)
    with pytest.raises(SeisinvError, match="model predicts"):
        predict(ToyRun(), source, other, progress=False)


def test_resuming_into_a_store_of_other_settings_is_refused(tmp_path, source, monkeypatch):
    """A rerun resumes only with the checkpoint, weights and TTA that made the stored maps."""
    run = ToyRun()
    run.checkpoint, run.which, run.step = tmp_path / "run" / "checkpoints" / "best", "ema", 10
    store = open_prediction_store(tmp_path / "p", run, ["flip"])
    predict(run, source, store, tta=["flip"], progress=False)
    assert open_prediction_store(tmp_path / "p", run, ["flip"]).ids() == source.ids
    with pytest.raises(SeisinvError, match="tta \\['flip'\\], not tta \\[\\]"):
        open_prediction_store(tmp_path / "p", run, [])
    run.step = 20
    with pytest.raises(SeisinvError, match="step 10, not step 20"):
        open_prediction_store(tmp_path / "p", run, ["flip"])
    run.step = 10
    monkeypatch.chdir(tmp_path)  # the same checkpoint spelled relative to another directory
    run.checkpoint = Path("run/checkpoints/best")
    assert open_prediction_store(tmp_path / "p", run, ["flip"]).ids() == source.ids
