"""Faithful details of the Speed & Structure experiments, each against its source."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seisinv.data.flip import flip_source_slots
from seisinv.data.folds import TRAIN_ONLY
from seisinv.data.pipeline import build_pipeline
from seisinv.data.transforms import (
    fold_time,
    insert_zero_shot,
    resample_time_area,
    resample_time_linear,
)
from seisinv.errors import ConfigError, DataError
from seisinv.experiment.folds import experiment_folds, kfold_assign
from seisinv.experiment.spec import FoldRule
from seisinv.survey import SPEED_STRUCTURE


def test_linear_resample_equals_scipy_interp1d():
    from scipy.interpolate import interp1d

    traces = np.random.default_rng(0).standard_normal((2, 5, 301, 7)).astype(np.float32)
    for length in (64, 300, 301, 777):
        expected = interp1d(np.linspace(0, 1, 301), traces, axis=-2, kind="linear")(
            np.linspace(0, 1, length))
        np.testing.assert_allclose(resample_time_linear(traces, length), expected, atol=1e-6)


def test_area_resample_equals_torch_area_interpolation():
    traces = np.random.default_rng(1).standard_normal((5, 1001, 4)).astype(np.float32)
    flat = torch.from_numpy(traces).permute(0, 2, 1)  # (shots, receivers, time)
    expected = torch.nn.functional.interpolate(flat, size=1000, mode="area").permute(0, 2, 1)
    np.testing.assert_allclose(resample_time_area(traces, 1000), expected.numpy(), atol=1e-6)


def test_fold_time_is_the_seed_reshape():
    # The public code: x.reshape(N, C, rows, T // rows, R).permute(0, 1, 2, 4, 3).reshape(...)
    gathers = np.random.default_rng(2).standard_normal((2, 6, 10000, 31)).astype(np.float32)
    expected = gathers.reshape(2, 6, 1000, 10, 31).transpose(0, 1, 2, 4, 3).reshape(2, 6, 1000, 310)
    np.testing.assert_array_equal(fold_time(gathers, 1000), expected)
    # Pixel (row 3, column r * 10 + k) is receiver r at time 3 * 10 + k.
    assert fold_time(gathers, 1000)[0, 0, 3, 7 * 10 + 4] == gathers[0, 0, 34, 7]
    with pytest.raises(DataError, match="fold"):
        fold_time(gathers[..., :9999, :], 1000)


def test_six_slot_flip_moves_source_150_into_slot_151():
    survey = SPEED_STRUCTURE
    shots = np.stack([np.full((4, survey.n_receivers), s + 1.0, np.float32) for s in range(5)])
    shots[:, :, 0] = -1.0  # mark receiver 0
    slots = insert_zero_shot(shots, 3)  # sources 1, 75, 150, 151, 225, 300
    assert [float(slots[i, 0, 1]) for i in range(6)] == [1, 2, 3, 0, 4, 5]
    flipped = flip_source_slots(shots, 3, survey.n_shots)
    # Mirrored: slot k holds the source at the mirror of slot k's position.
    assert [float(flipped[i, 0, 1]) for i in range(6)] == [5, 4, 0, 3, 2, 1]
    data = [0, 1, 3, 4, 5]  # every slot but the zero one (now slot 2)
    assert (flipped[data, :, -1] == -1).all() and (flipped[data, :, 0] != -1).all()
    assert not flipped[2].any()
    # Flipping the six slots again restores the unflipped layout.
    np.testing.assert_array_equal(flip_source_slots(flipped, 3, survey.n_shots), slots)


def test_source_slots_step_inserts_for_raw_shots_and_passes_flipped_slots():
    pipeline = build_pipeline([{"name": "source_slots", "position": 3, "shots": 5}],
                              SPEED_STRUCTURE)
    raw = np.ones((5, 8, 31), np.float32)
    assert pipeline(raw).shape == (6, 8, 31) and not pipeline(raw)[3].any()
    flipped = flip_source_slots(raw, 3, 5)
    np.testing.assert_array_equal(pipeline(flipped), flipped)
    assert pipeline.output_shape()[0] == 6


def test_fixed_zscore_is_not_refitted():
    pipeline = build_pipeline([{"name": "zscore", "mean": 1.0, "std": 2.0}], SPEED_STRUCTURE)
    assert pipeline.is_fitted
    np.testing.assert_allclose(pipeline(np.full((5, 3, 31), 5.0, np.float32)), 2.0)
    with pytest.raises(ConfigError, match="both mean and std"):
        build_pipeline([{"name": "zscore", "mean": 1.0}], SPEED_STRUCTURE)


def test_mix_without_flips_is_exactly_the_weighted_sum():
    from seisinv.geology.mix import mix_maps

    rng = np.random.default_rng(3)
    v1, v2 = rng.uniform(1.5, 4.5, (2, 20, 9)).astype(np.float32)
    np.testing.assert_allclose(mix_maps(v1, v2, 0.3, False, False), 0.3 * v1 + 0.7 * v2,
                               rtol=1e-6)


def test_kfold_matches_scikit_learn():
    model_selection = pytest.importorskip("sklearn.model_selection")
    folds = kfold_assign(23, 5, 123)
    split = model_selection.KFold(5, shuffle=True, random_state=123).split(np.arange(23))
    for fold, (_, valid) in enumerate(split):
        assert sorted(np.flatnonzero(folds == fold)) == sorted(valid)


def test_kfold_rule_folds_only_the_first_samples():
    ids = [f"id{i:02d}" for i in range(12)] + ["gen-1"]
    rule = FoldRule(rule="kfold", k=3, seed=123, first=9)
    folds = experiment_folds(rule, ids, [False] * 12 + [True], [None] * 13)
    assert all(folds[f"id{i:02d}"] == TRAIN_ONLY for i in range(9, 12))
    assert folds["gen-1"] == TRAIN_ONLY
    assert sorted(folds[f"id{i:02d}"] for i in range(9)) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    expected = kfold_assign(9, 3, 123)
    assert [folds[f"id{i:02d}"] for i in range(9)] == expected.tolist()


def test_depth_relative_l1_hard_pixels_follows_the_seed_formula():
    from seisinv.training.losses import LOSSES, LossContext

    rng = np.random.default_rng(4)
    target = torch.from_numpy(rng.uniform(1.5, 4.5, (2, 6, 5)).astype(np.float32))
    pred = target + torch.from_numpy(rng.normal(0, 0.3, (2, 6, 5)).astype(np.float32))
    fn = LOSSES.get("depth_relative_l1")(LossContext(SPEED_STRUCTURE), bottom=0.25,
                                          hard_pixels=True)
    # The seed (train_custom_eva02_tiny.py), written out: per-pixel relative L1, depth weight
    # linspace(1, 0.25, H), exp(loss) normalised to mean 1 per sample, then the mean.
    loss = (pred - target).abs() / target
    weight = torch.linspace(1.0, 0.25, 6)[:, None]
    hard = torch.exp(loss)
    hard = hard * 30 / hard.sum(dim=(1, 2), keepdim=True)
    expected = (loss * weight * hard).mean(dim=(1, 2))
    torch.testing.assert_close(fn(pred, target, None), expected)
    plain = LOSSES.get("depth_relative_l1")(LossContext(SPEED_STRUCTURE), bottom=0.25)
    torch.testing.assert_close(plain(pred, target, None), (loss * weight).mean(dim=(1, 2)))


@pytest.mark.parametrize("fusion", ["dual", "single"])
def test_eva_attention_maps_shots_to_a_bounded_velocity_with_gradients(fusion):
    from seisinv.models import create_model, model_options, size_options

    options = {**size_options("eva_attention", "tiny"), "fusion": fusion}
    model = create_model("eva_attention", SPEED_STRUCTURE, **options)
    out = model(torch.randn(1, 5, 20, 310))
    assert out.shape == (1, 1259, 300)
    assert float(out.detach().min()) >= 1.5 and float(out.detach().max()) <= 4.5
    out.mean().backward()
    assert all(p.grad is not None for p in model.fusion.parameters())
    assert {"split", "fusion", "shot_heads", "query_heads", "image_size"} <= set(
        model_options("eva_attention"))


def test_eva_attention_rejects_heads_that_do_not_divide_the_width():
    from seisinv.models import create_model, size_options

    with pytest.raises(ConfigError, match="shot_heads"):
        create_model("eva_attention", SPEED_STRUCTURE,
                     **{**size_options("eva_attention", "tiny"), "shot_heads": 3})


def test_eva_fusion_takes_six_source_slots():
    from seisinv.models import create_model

    model = create_model("eva_fusion", SPEED_STRUCTURE, image_size=[28, 14], patch_size=7,
                         embed_dim=16, depth=2, num_heads=2, split=1, shots=6,
                         shot_embedding=False)
    assert model(torch.randn(1, 6, 40, 62)).shape == (1, 1259, 300)
    with pytest.raises(DataError, match="6 shots"):
        model(torch.randn(1, 5, 40, 62))


def test_pretrained_accepts_a_local_weights_file(tmp_path):
    import timm
    from safetensors.torch import save_file

    from seisinv.models import create_model

    reference = timm.create_model("test_convnext", pretrained=False)
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    model = create_model("unet", SPEED_STRUCTURE, backbone="test_convnext", pretrained=str(path),
                         input_height=32, shots_as="width", decoder_channels=8, head_channels=4)
    # The stem was adapted to one input channel (timm sums the RGB filters); later layers match.
    loaded = model.encoder.state_dict()
    key = next(k for k in loaded if k.endswith("stages_1.blocks.0.mlp.fc1.weight"))
    expected = reference.state_dict()[key.replace("stages_1", "stages.1")]
    assert torch.equal(loaded[key], expected)
    with pytest.raises(ConfigError, match="not found"):
        create_model("unet", SPEED_STRUCTURE, backbone="test_convnext",
                     pretrained=str(tmp_path / "missing.safetensors"))
