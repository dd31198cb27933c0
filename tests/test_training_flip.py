"""The flip augmentation re-simulated on the training device in batches equals the per-sample
CPU flip (``seisinv.data.flip.flip_sample``), and a run using it trains like one without it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_training import tiny_config, write_dataset

from seisinv.survey import OPENFWI

# Receivers on every cell mirror exactly; the middle source (cell 11 of 24) mirrors to cell 12,
# which has no source: that shot is re-simulated, like OpenFWI's.
SURVEY = OPENFWI.replace(
    name="flip",
    nz=24,
    nx=24,
    nt=200,
    source_x=(0.0, 110.0, 230.0),
    receiver_x=tuple(10.0 * i for i in range(24)),
)


def _velocity(n, seed=0):
    rng = np.random.default_rng(seed)
    z = np.linspace(0, 1, SURVEY.nz)[None, :, None]
    x = np.linspace(-1, 1, SURVEY.nx)[None, None, :]
    return (2000 + 1500 * z + rng.uniform(-300, 300, (n, 1, 1)) * x).astype(np.float32)


def test_batched_flip_equals_the_per_sample_flip():
    from seisinv.data.flip import flip_batch, flip_sample, resimulated_shots
    from seisinv.data.sample import Sample
    from seisinv.physics import simulate

    assert resimulated_shots(SURVEY).tolist() == [1]
    velocity = _velocity(3)
    gathers = simulate(velocity, SURVEY, device="cpu").numpy()
    batch_g, batch_v = flip_batch(torch.from_numpy(gathers), torch.from_numpy(velocity), SURVEY)
    scale = float(np.abs(gathers).max())
    for i in range(3):
        one = flip_sample(Sample(str(i), gathers[i], velocity[i]), SURVEY, strategy="auto")
        assert np.array_equal(batch_v[i].numpy(), one.velocity)
        np.testing.assert_allclose(batch_g[i].numpy(), one.gathers, rtol=0, atol=1e-5 * scale)
    # And both equal simulating the mirrored velocity (physics against physics).
    mirrored = simulate(velocity[:, :, ::-1].copy(), SURVEY, device="cpu").numpy()
    np.testing.assert_allclose(batch_g.numpy(), mirrored, rtol=0, atol=1e-4 * scale)


@pytest.fixture(scope="module")
def flip_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("flip-data")
    folders = write_dataset(root, SURVEY, n=4)
    from seisinv.physics import simulate

    # Gathers that are the survey's physics, so a re-simulated shot fits its neighbours.
    for k, family in enumerate(("FlatVel_A", "CurveVel_A")):
        velocity = np.load(folders[family] / f"model{k + 1}.npy")[:, 0]
        np.save(folders[family] / f"data{k + 1}.npy", simulate(velocity, SURVEY, device="cpu")
                .numpy())
    return folders


def test_deferred_flip_plus_device_flip_equals_the_worker_flip(flip_data):
    from seisinv.data import SeismicDataset, build_pipeline, open_dataset
    from seisinv.data.augment import build_augment
    from seisinv.training.device_flip import setup_device_flip

    source = open_dataset(flip_data["FlatVel_A"], SURVEY)
    pipeline = build_pipeline([{"name": "zscore"}], SURVEY)
    pipeline.fit(source)
    spec = [{"name": "amplitude", "low": 0.8, "high": 1.2}, {"name": "flip", "p": 0.5}]
    cpu = SeismicDataset(source, pipeline, augment=build_augment(spec, SURVEY), seed=3)
    deferred = SeismicDataset(source, pipeline, augment=build_augment(spec, SURVEY), seed=3)
    flip = setup_device_flip(True, torch.device("cpu"), deferred, pipeline, SURVEY)
    assert flip is not None and flip.shots == [1]
    assert setup_device_flip("auto", torch.device("cpu"), cpu, pipeline, SURVEY) is None
    from torch.utils.data import default_collate

    expected = default_collate([cpu[i] for i in range(4)])
    batch = default_collate([deferred[i] for i in range(4)])
    assert batch["flip_pending"].any() and not batch["flip_pending"].all()
    assert not expected["flip_pending"].any()
    inputs = flip(batch["gathers"], batch["velocity"], batch["flip_pending"])
    scale = float(expected["gathers"].abs().max())
    torch.testing.assert_close(inputs, expected["gathers"], rtol=0, atol=1e-4 * scale)
    assert torch.equal(batch["velocity"], expected["velocity"])


def test_a_flip_that_is_not_last_or_a_shape_changing_pipeline_stays_in_the_workers(flip_data):
    from seisinv.data import SeismicDataset, build_pipeline, open_dataset
    from seisinv.data.augment import build_augment
    from seisinv.training.device_flip import setup_device_flip

    source = open_dataset(flip_data["FlatVel_A"], SURVEY)
    zscore = build_pipeline([{"name": "zscore"}], SURVEY).fit(source)
    not_last = build_augment([{"name": "flip"}, {"name": "noise"}], SURVEY)
    data = SeismicDataset(source, zscore, augment=not_last)
    assert setup_device_flip(True, torch.device("cpu"), data, zscore, SURVEY) is None
    resample = build_pipeline([{"name": "resample", "length": 100}], SURVEY)
    data = SeismicDataset(source, resample, augment=build_augment([{"name": "flip"}], SURVEY))
    assert setup_device_flip(True, torch.device("cpu"), data, resample, SURVEY) is None
    nearest = build_augment([{"name": "flip", "strategy": "nearest"}], SURVEY)
    data = SeismicDataset(source, zscore, augment=nearest)
    assert setup_device_flip(True, torch.device("cpu"), data, zscore, SURVEY) is None


def test_training_with_the_device_flip_matches_the_worker_flip(flip_data, tmp_path, monkeypatch):
    from seisinv.training import device_flip
    from seisinv.training.trainer import train

    calls = []
    original = device_flip.DeviceFlip.__call__

    def counted(self, inputs, velocity, pending):
        calls.append(int(pending.sum()))
        return original(self, inputs, velocity, pending)

    monkeypatch.setattr(device_flip.DeviceFlip, "__call__", counted)

    def run(mode):
        config = tiny_config(flip_data, "data.limit=4", "data.val_limit=2", "batch_size=2",
                             "steps=2", "data.transforms=[{name: zscore}]",
                             "data.augment=[{name: flip, p: 1.0}]", f"device_flip={mode}",
                             "model.options.input_height=64")
        return [e["loss"] for e in train(config, tmp_path / mode).history]

    on = run("true")
    # Both steps' batches were flipped on the device (validation batches have nothing pending).
    assert [c for c in calls if c] == [2, 2]
    assert on == pytest.approx(run("false"), rel=1e-4)
    assert [c for c in calls if c] == [2, 2]  # the worker-flip run never called it
