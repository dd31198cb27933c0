"""SeismicDataset items and make_loader batches, with and without worker processes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seisinv.data import SeismicDataset, build_pipeline, make_loader, open_dataset
from seisinv.data.writers import write_sample_folder, write_stacked
from seisinv.survey import OPENFWI, SPEED_STRUCTURE


@pytest.fixture
def fwi_source(tmp_path):
    survey = OPENFWI.replace(name="small-fwi", nz=8, nx=10, nt=30, source_x=(0.0, 90.0),
                             receiver_x=tuple(10.0 * i for i in range(10)))
    rng = np.random.default_rng(0)
    velocity = rng.uniform(2000, 4000, (6, 8, 10)).astype(np.float32)
    write_stacked(tmp_path / "FlatVel_A" / "data1.npy",
                  rng.standard_normal((6, *survey.gather_shape)).astype(np.float32), velocity,
                  survey)
    save_test = tmp_path / "test"
    write_stacked(save_test / "data9.npy",
                  rng.standard_normal((2, *survey.gather_shape)).astype(np.float32), None, survey)
    return open_dataset([tmp_path / "FlatVel_A", save_test], survey), velocity


def test_items_hold_transformed_gathers_and_survey_unit_velocity(fwi_source):
    source, velocity = fwi_source
    pipeline = build_pipeline([{"name": "resample", "length": 16},
                               {"name": "pad_receivers", "to": 12}], source.survey)
    dataset = SeismicDataset(source, pipeline, indices=[5, 6])
    assert len(dataset) == 2
    item = dataset[0]
    assert item["gathers"].shape == (2, 16, 12) and item["gathers"].dtype == torch.float32
    assert item["velocity"].shape == (8, 10) and item["velocity"].dtype == torch.float32
    np.testing.assert_array_equal(item["velocity"].numpy(), velocity[5])
    assert item["id"] == "FlatVel_A-data1_5" and item["family"] == "FlatVel_A"
    assert item["synthetic"] is False and item["index"] == 5
    test_item = dataset[1]
    assert torch.isnan(test_item["velocity"]).all() and test_item["family"] == ""


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_batches_in_seeded_order(fwi_source, workers):
    source, _ = fwi_source
    dataset = SeismicDataset(source, build_pipeline([], source.survey))
    ids = []
    for _ in range(2):
        loader = make_loader(dataset, batch_size=3, shuffle=True, workers=workers, seed=7)
        batches = list(loader)
        ids.append([i for b in batches for i in b["id"]])
    assert ids[0] == ids[1] and sorted(ids[0]) == sorted(source.ids)
    first = batches[0]
    assert first["gathers"].shape == (3, *source.survey.gather_shape)
    assert first["velocity"].shape == (3, 8, 10) and first["synthetic"].dtype == torch.bool


def test_augmentation_is_seeded_by_sample_and_epoch(fwi_source):
    source, _ = fwi_source

    def add_noise(gathers, velocity, rng):
        return gathers + rng.standard_normal(gathers.shape).astype(np.float32), velocity

    dataset = SeismicDataset(source, build_pipeline([], source.survey), augment=add_noise, seed=3)
    a, b = dataset[2]["gathers"], dataset[2]["gathers"]
    assert torch.equal(a, b)
    dataset.set_epoch(1)
    assert not torch.equal(a, dataset[2]["gathers"])


def test_speed_structure_item_is_depth_first(tmp_path):
    survey = SPEED_STRUCTURE.replace(name="small-ss", nz=40, nx=12, nt=50,
                                     source_x=(0.0, 11.0), receiver_x=(0.0, 10.0),
                                     shot_names=("1", "12"))
    depth = np.linspace(1.5, 4.5, 40, dtype=np.float32)[:, None] * np.ones((1, 12), np.float32)
    write_sample_folder(tmp_path, "s0", np.zeros(survey.gather_shape, np.float32), depth, survey)
    item = SeismicDataset(open_dataset(tmp_path, survey), build_pipeline([], survey))[0]
    assert item["velocity"].shape == (40, 12)
    assert torch.all(item["velocity"][1:] > item["velocity"][:-1])
