"""Training: config, schedule, EMA, losses, metrics, checkpoints, the loop, resume and load_run.

The loop tests train a tiny U-Net on a handful of random OpenFWI-layout samples written to a
temporary folder (no generator, no shared data).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from seisinv.errors import CheckpointError, ConfigError
from seisinv.metrics import mae_per_sample, mape_per_sample, ssim_per_sample
from seisinv.training import checkpoint as ckpt
from seisinv.training.config import (
    LossConfig,
    LossTerm,
    ScheduleConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    load_config,
    recipe_names,
)
from seisinv.training.losses import (
    LOSSES,
    Loss,
    LossContext,
    depth_weights,
    hard_example_weights,
)
from seisinv.training.schedule import lr_at


# ---- tiny dataset ----------------------------------------------------------------------------
def write_dataset(root: Path, survey, n: int = 8, seed: int = 0) -> dict[str, Path]:
    """Two OpenFWI-layout families of ``n`` samples: random gathers whose first samples carry
    the velocity, and smooth velocities increasing with depth; plus the survey as YAML."""
    rng = np.random.default_rng(seed)
    folders = {}
    for k, family in enumerate(("FlatVel_A", "CurveVel_A")):
        z = np.linspace(0.0, 1.0, survey.nz)[None, :, None]
        top = rng.uniform(1600, 2500, (n, 1, 1))
        gradient = rng.uniform(500, 1800, (n, 1, 1))
        lateral = rng.uniform(-100, 100, (n, 1, 1)) * np.linspace(-1, 1, survey.nx)[None, None, :]
        velocity = (top + gradient * z + lateral).astype(np.float32)[:, None]
        gathers = rng.standard_normal((n, *survey.gather_shape)).astype(np.float32)
        gathers[:, :, :40, :] += ((top - 2000) / 300)[:, :, :, None]
        folder = root / family
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"data{k + 1}.npy", gathers)
        np.save(folder / f"model{k + 1}.npy", velocity)
        folders[family] = folder
    survey_path = root / "survey.yaml"
    survey_path.write_text(yaml.safe_dump(survey.to_dict()))
    folders["survey"] = survey_path
    return folders


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tiny_survey):
    return write_dataset(tmp_path_factory.mktemp("training-data"), tiny_survey)


def tiny_config(dataset, *extra: str) -> TrainConfig:
    """The tiny-openfwi recipe pointed at the test data, with a test-sized U-Net."""
    from seisinv.models import size_options

    overrides = [
        f"data.train=[{dataset['FlatVel_A']}]",
        f"data.val=[{dataset['CurveVel_A']}]",
        f"data.survey={dataset['survey']}",
        "data.transforms=[{name: resample, length: 64}, {name: zscore}]",
        "model.name=unet",
        f"model.options={json.dumps(size_options('unet', 'tiny'))}",
        "logging.progress=false",
        "logging.tensorboard=false",
        "logging.every_steps=1",
        *extra,
    ]
    return load_config("tiny-openfwi", overrides)


# ---- config ----------------------------------------------------------------------------------
def test_every_packaged_recipe_validates():
    from seisinv.data import build_pipeline
    from seisinv.data.augment import build_augment
    from seisinv.models import model_options
    from seisinv.survey import load_survey

    names = recipe_names()
    assert {
        "tiny-openfwi",
        "speed-structure-caformer-unet",
        "speed-structure-eva-fusion",
        "openfwi-inversionnet",
        "openfwi-unet",
    } <= set(names)
    for name in names:
        config = load_config(name)
        assert config.name == name
        survey = load_survey(config.data.survey)
        unknown = set(config.model.options) - set(model_options(config.model.name))
        assert not unknown, f"{name}: model options {unknown}"
        build_pipeline(config.data.transforms, survey)
        build_augment(config.data.augment, survey)
        Loss(config.loss, LossContext(survey))


def test_speed_structure_recipe_has_the_published_settings():
    config = load_config("speed-structure-caformer-unet")
    assert [t.name for t in config.loss.terms] == ["mape"]
    assert (config.optimizer.lr, config.optimizer.weight_decay) == (1e-4, 1e-5)
    assert (config.batch_size, config.accumulate, config.clip_grad_norm) == (2, 4, 1.0)
    assert (config.epochs, config.schedule.name, config.schedule.min_lr) == (20, "cosine", 0.0)
    assert config.ema.enabled and config.checkpoint.best_metric == "mape"
    steps = {step["name"]: step for step in config.data.transforms}
    assert steps["resample"]["length"] == 2048 and steps["pad_receivers"]["to"] == 32
    assert config.model.options["shots_as"] == "width"


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"optimizer\.lrr: unknown key"):
        config_from_dict({"optimizer": {"lrr": 1e-3}})
    with pytest.raises(ConfigError, match=r"bogus: unknown key"):
        load_config("tiny-openfwi", ["bogus=1"])


def test_overrides_parse_yaml_values_and_nest():
    data = apply_overrides(
        {"model": {"name": "unet"}},
        ["model.options.width=0.5", "data.train=[a, b]", "ema.enabled=false", "steps=10"],
    )
    assert data["model"] == {"name": "unet", "options": {"width": 0.5}}
    assert data["data"]["train"] == ["a", "b"]
    assert data["ema"]["enabled"] is False and data["steps"] == 10
    config = load_config("tiny-openfwi", ["optimizer.lr=3e-4", "batch_size=2"])
    assert config.optimizer.lr == 3e-4 and config.batch_size == 2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimizer.lr", "expected key=value"),
        ("=3", "expected key=value"),
        ("optimizer..lr=1", "empty part"),
        ("data.train=[a", "not valid YAML"),
        ("name.sub=1", "not a mapping"),
        ("batch_size=zero", "batch_size"),
        ("folds.val_fold=7", "val_fold 7 must be below k=5"),
    ],
)
def test_bad_overrides_raise_config_error(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny-openfwi", [override])


def test_unknown_recipe_lists_the_known_ones():
    with pytest.raises(ConfigError, match="tiny-openfwi"):
        load_config("no-such-recipe")


def test_cli_reports_a_bad_key_in_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "seisinv.cli.main", "train", "tiny-openfwi", "--set", "epochz=3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "epochz: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


# ---- schedule, EMA, metrics, losses -----------------------------------------------------------
def test_schedule_warmup_then_cosine_matches_hand_values():
    schedule = ScheduleConfig(name="cosine", warmup_steps=4, warmup_start=0.0, min_lr=0.1)
    lrs = [lr_at(s, 14, 1.0, schedule) for s in range(15)]
    assert lrs[:4] == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert lrs[4] == pytest.approx(1.0)
    # Halfway through the 10 cosine steps: min + (max - min) / 2.
    assert lrs[9] == pytest.approx(0.55)
    assert lrs[14] == pytest.approx(0.1)
    assert lr_at(6, 14, 1.0, schedule) == pytest.approx(
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.2))
    )
    constant = ScheduleConfig(name="constant", warmup_steps=2, warmup_start=0.5)
    assert [lr_at(s, 10, 2.0, constant) for s in range(4)] == pytest.approx([1.0, 1.5, 2.0, 2.0])


def test_warmup_longer_than_the_run_is_capped_at_half_of_it():
    schedule = ScheduleConfig(name="cosine", warmup_steps=10, warmup_start=0.0, min_lr=0.0)
    # 4 steps: warmup 2, then cosine over the remaining 2 (the rate is reached at step 2).
    assert [lr_at(s, 4, 1.0, schedule) for s in range(4)] == pytest.approx([0.0, 0.5, 1.0, 0.5])
    assert lr_at(0, 1, 1.0, schedule) == pytest.approx(1.0)  # a one-step run trains at lr


def test_ema_values_match_hand_computation():
    from seisinv.training.config import EmaConfig
    from seisinv.training.optim import create_ema

    layer = torch.nn.Linear(1, 1, bias=False)
    ema = create_ema(layer, EmaConfig(decay=0.9))
    expected = None
    for step, weight in enumerate([1.0, 3.0, -2.0, 5.0], start=1):
        with torch.no_grad():
            layer.weight.fill_(weight)
        ema.update(layer, step=step)
        # The first update copies; later ones: ema = 0.9 ema + 0.1 w.
        expected = weight if expected is None else 0.9 * expected + 0.1 * weight
        assert float(ema.module.weight.detach()) == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.9 * (0.9 * 1.2 + 0.1 * -2.0) + 0.5)


def test_validation_metrics_on_tensors_match_hand_values():
    target = torch.tensor([[[2.0, 4.0], [1.0, 1.0]], [[3.0, 3.0], [3.0, 3.0]]])
    pred = torch.tensor([[[1.0, 5.0], [1.0, 2.0]], [[3.0, 3.0], [3.0, 6.0]]])
    assert mae_per_sample(pred, target).tolist() == pytest.approx([0.75, 0.75])
    # Sample 0: (1/2 + 1/4 + 0 + 1) / 4; sample 1: (0 + 0 + 0 + 1) / 4.
    assert mape_per_sample(pred, target).tolist() == pytest.approx([1.75 / 4, 0.25], rel=1e-6)
    smooth = torch.linspace(1.5, 4.5, 64).reshape(1, 8, 8).repeat(2, 1, 1)
    assert ssim_per_sample(smooth, smooth, 1.5, 4.5).tolist() == pytest.approx([1.0, 1.0])
    noisy = smooth + 0.3 * torch.randn(smooth.shape, generator=torch.Generator().manual_seed(0))
    assert (ssim_per_sample(noisy, smooth, 1.5, 4.5) < 0.99).all()


def test_losses_match_hand_values(tiny_survey):
    ctx = LossContext(tiny_survey)  # range 3000 m/s
    target = torch.full((2, 4, 3), 3000.0)
    pred = target.clone()
    pred[0] += 300.0
    gathers = torch.zeros(2, 3, 10, 16)
    assert LOSSES.get("l1")(ctx)(pred, target, gathers).tolist() == pytest.approx([0.1, 0.0])
    assert LOSSES.get("mse")(ctx)(pred, target, gathers).tolist() == pytest.approx([0.01, 0.0])
    assert LOSSES.get("mape")(ctx)(pred, target, gathers).tolist() == pytest.approx([0.1, 0.0])
    weights = depth_weights(4, 0.25)[:, 0]
    assert weights.tolist() == pytest.approx([1.0, 0.75, 0.5, 0.25])
    depth = LOSSES.get("depth_l1")(ctx)(pred, target, gathers)
    assert depth.tolist() == pytest.approx([0.1 * weights.mean().item(), 0.0])
    # A 600 m/s step in depth: one of the three depth differences per column is 600 m/s, so
    # both terms are (600 / 3) / 3000 (gradient against a flat target, smoothness of pred alone).
    step = target.clone()
    step[:, 2:] += 600.0
    expected = [600.0 / 3 / 3000] * 2
    assert LOSSES.get("gradient")(ctx)(step, target, gathers).tolist() == pytest.approx(expected)
    assert LOSSES.get("smoothness")(ctx)(step, target, gathers).tolist() == pytest.approx(expected)


def test_hard_example_weighting_and_combination(tiny_survey):
    per_sample = torch.tensor([0.0, math.log(3.0)])
    assert hard_example_weights(per_sample).tolist() == pytest.approx([0.5, 1.5])
    config = LossConfig(
        terms=[LossTerm(name="l1", weight=2.0), LossTerm(name="mape", weight=1.0)],
        reduction="hard_example",
    )
    loss = Loss(config, LossContext(tiny_survey))
    target = torch.full((2, 4, 4), 3000.0)
    pred = target.clone()
    pred[1] += 300.0
    total, parts = loss(pred, target, torch.zeros(2, 3, 10, 16))
    per = torch.tensor([0.0, 2 * 0.1 + 0.1])
    expected = (torch.softmax(per, 0) * 2 * per).mean()
    assert float(total) == pytest.approx(float(expected), rel=1e-5)
    assert parts == pytest.approx({"l1": 0.05, "mape": 0.05}, rel=1e-5)


def test_unknown_loss_and_bad_options(tiny_survey):
    from seisinv.errors import SeisinvError

    with pytest.raises(SeisinvError, match="unknown loss 'l3'"):
        Loss(LossConfig(terms=[LossTerm(name="l3")]), LossContext(tiny_survey))
    with pytest.raises(ConfigError, match="depth_l1"):
        Loss(
            LossConfig(terms=[LossTerm(name="depth_l1", options={"top": 2})]),
            LossContext(tiny_survey),
        )


def test_physics_loss_is_zero_for_the_true_model_and_differentiable():
    from seisinv.data import build_pipeline
    from seisinv.physics import simulate
    from seisinv.survey import OPENFWI

    survey = OPENFWI.replace(
        name="mini",
        nz=16,
        nx=16,
        nt=120,
        source_x=(0.0, 150.0),
        receiver_x=tuple(10.0 * i for i in range(16)),
    )
    truth = torch.full((1, 16, 16), 2000.0)
    truth[:, 8:] = 3000.0
    observed = simulate(truth, survey, device="cpu")
    pipeline = build_pipeline([{"name": "scale", "factor": 10.0}, {"name": "zscore"}], survey)
    pipeline.fit([type("S", (), {"gathers": observed[0].numpy()})()])
    inputs = pipeline(observed)
    fn = LOSSES.get("physics")(LossContext(survey, pipeline), device="cpu")
    assert float(fn(truth, truth, inputs)[0]) == pytest.approx(0.0, abs=1e-8)
    wrong = truth.clone()
    wrong[:, :8] = 2400.0
    wrong.requires_grad_(True)
    misfit = fn(wrong, truth, inputs)
    misfit.sum().backward()
    assert float(misfit[0].detach()) > 1e-3
    assert wrong.grad is not None and float(wrong.grad.abs().sum()) > 0


# ---- checkpoints -----------------------------------------------------------------------------
def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Conv2d(4, 1, 1)
    )


def test_checkpoint_round_trip_without_pickle(tmp_path):
    net = _net()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net(torch.randn(2, 1, 8, 8)).mean().backward()
    optimizer.step()
    state = {
        "optimizer": optimizer.state_dict(),
        "numpy": np.arange(5, dtype=np.uint32),
        "tuple": (1, 2.5, None, "x"),
    }
    folder = ckpt.save_checkpoint(tmp_path / "last", net.state_dict(), None, state, {"name": "t"})
    back = ckpt.read_checkpoint(folder)
    assert back.ema is None and back.config == {"name": "t"}
    for key, value in net.state_dict().items():
        assert torch.equal(back.model[key], value)
    assert back.state["numpy"].tolist() == [0, 1, 2, 3, 4]
    assert back.state["tuple"] == [1, 2.5, None, "x"]
    restored = torch.optim.AdamW(_net().parameters(), lr=1e-3)
    restored.load_state_dict(back.state["optimizer"])
    for key, value in optimizer.state_dict()["state"][0].items():
        assert torch.equal(restored.state_dict()["state"][0][key], value)
    # Writing again replaces the directory and leaves no temporary or old copy behind.
    ckpt.save_checkpoint(tmp_path / "last", net.state_dict(), None, state, {"name": "u"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]
    assert ckpt.read_checkpoint(tmp_path / "last").config == {"name": "u"}


def test_checkpoint_killed_between_renames_is_still_found(tmp_path):
    net = _net()
    ckpt.save_checkpoint(tmp_path / "last", net.state_dict(), None, {}, {})
    (tmp_path / "last").rename(tmp_path / "last.old")
    assert ckpt.read_checkpoint(tmp_path / "last").folder == tmp_path / "last.old"


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_corrupted_checkpoint_raises_checkpoint_error(tmp_path, damage):
    net = _net()
    folder = ckpt.save_checkpoint(tmp_path / "last", net.state_dict(), None, {}, {})
    path = folder / ckpt.MODEL_FILE
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[-3] ^= 0xFF
        path.write_bytes(bytes(raw))
    elif damage == "truncate":
        path.write_bytes(bytes(raw[: len(raw) // 2]))
    else:
        path.unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        ckpt.read_checkpoint(folder)


def test_mismatched_weights_never_half_load(tmp_path):
    net = _net()
    folder = ckpt.save_checkpoint(tmp_path / "last", net.state_dict(), None, {}, {})
    other = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Conv2d(4, 2, 1)
    )
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"shape mismatch: 2\.weight"):
        ckpt.load_weights(other, ckpt.read_checkpoint(folder).model, "test")
    for key, value in other.state_dict().items():
        assert torch.equal(value, before[key])
    with pytest.raises(CheckpointError, match="missing"):
        ckpt.check_state_dict(net, {"0.weight": net[0].weight}, "partial")


# ---- data split ----
def test_fold_split_is_disjoint_balanced_and_fits_on_training_samples(dataset):
    from seisinv.training.data import build_data

    config = tiny_config(
        dataset,
        f"data.train=[{dataset['FlatVel_A']}, {dataset['CurveVel_A']}]",
        "data.val=[]",
        "folds.k=4",
        "folds.val_fold=1",
        "data.augment=[{name: flip, p: 1.0}]",
    )
    data = build_data(config)
    train_ids = {data.train.source.ids[i] for i in data.train.indices}
    val_ids = {data.val.source.ids[i] for i in data.val.indices}
    assert not train_ids & val_ids and len(train_ids | val_ids) == 16
    assert {data.folds[i] for i in val_ids} == {1}
    # Balanced by family: each of the 4 folds holds 2 samples of each family.
    assert sorted(i.split("-")[0] for i in val_ids) == ["CurveVel_A", "CurveVel_A",
                                                        "FlatVel_A", "FlatVel_A"]
    assert data.pipeline.is_fitted and data.val.augment is None
    # The flip augmentation (p=1) mirrors the training velocity left-right.
    position = data.train.indices[0]
    assert torch.allclose(
        data.train[0]["velocity"],
        torch.from_numpy(data.train.source[position].velocity[:, ::-1].copy()),
    )


def test_an_all_synthetic_pool_validates_on_generated_maps_but_never_on_mix_blends():
    from types import SimpleNamespace

    from seisinv.data.folds import TRAIN_ONLY
    from seisinv.training.data import fold_split

    ids = [f"gen-s0-{i:07d}" for i in range(40)]
    families = ["mix" if i % 2 else "flat" for i in range(40)]
    source = SimpleNamespace(ids=ids, synthetic=[True] * 40, families=families)
    train, val, folds = fold_split(source, load_config("tiny-openfwi", []))
    assert val and all(families[i] == "flat" for i in val)
    assert all(folds[i] == TRAIN_ONLY for i, f in zip(ids, families, strict=True) if f == "mix")
    assert sorted(train + val) == list(range(40))


# ---- the loop --------------------------------------------------------------------------------
def test_tiny_run_overfits_a_handful_of_samples(dataset, tmp_path):
    from seisinv.training.trainer import train

    config = tiny_config(
        dataset,
        "data.limit=4",
        "data.val=[]",
        "folds.val_fold=null",
        "batch_size=4",
        "steps=25",
        "optimizer.lr=3e-3",
        "schedule.name=constant",
        "schedule.warmup_steps=0",
        "ema.enabled=false",
    )
    result = train(config, tmp_path / "run")
    losses = [entry["loss"] for entry in result.history]
    assert len(losses) == 25
    assert losses[0] / min(losses[-3:]) > 5.0, losses
    assert (tmp_path / "run" / "checkpoints" / "last" / ckpt.MANIFEST).exists()
    assert not (tmp_path / "run" / "checkpoints" / "best").exists()  # no validation data


def _train_entries(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _comparable(run: Path) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "samples_per_s"} for e in _train_entries(run)]


RESUME_SETTINGS = (
    "data.limit=8",
    "data.val_limit=4",
    "batch_size=2",
    "accumulate=2",
    "epochs=3",
    "checkpoint.every_steps=1",
    "ema.decay=0.5",
    "logging.tensorboard=true",
)


@pytest.fixture(scope="module")
def resumed_runs(dataset, tmp_path_factory):
    """The same 6-step run twice: uninterrupted, and killed after step 4 (last checkpoint at
    step 3, mid-epoch) then resumed."""
    from seisinv.training.trainer import train

    root = tmp_path_factory.mktemp("runs")
    config = tiny_config(dataset, *RESUME_SETTINGS)
    whole = train(config, root / "whole")
    killed = train(config, root / "resumed", stop_after_steps=4)
    assert killed.step == 4
    saved = ckpt.read_checkpoint(root / "resumed" / "checkpoints" / "last").state["counters"]
    assert (saved["step"], saved["epoch"], saved["micro"]) == (3, 1, 2)
    resumed = train(config, root / "resumed", resume=True)
    return whole, resumed


def test_resume_continues_as_if_uninterrupted(resumed_runs):
    whole, resumed = resumed_runs
    assert whole.step == resumed.step == whole.total_steps == 6
    a = ckpt.read_checkpoint(whole.run_dir / "checkpoints" / "last")
    b = ckpt.read_checkpoint(resumed.run_dir / "checkpoints" / "last")
    for key in a.model:
        assert torch.equal(a.model[key], b.model[key]), key
        assert torch.equal(a.ema[key], b.ema[key]), key
    # Same losses, learning rates and validation metrics, step by step (timings aside).
    assert _comparable(whole.run_dir) == _comparable(resumed.run_dir)
    steps = [e["step"] for e in _train_entries(resumed.run_dir) if e["kind"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]  # step 4, logged before the kill, appears once
    val = [e for e in _train_entries(resumed.run_dir) if e["kind"] == "val"]
    assert [e["step"] for e in val] == [2, 4, 6]
    assert set(val[-1]["families"]) == {"CurveVel_A"}
    assert (resumed.run_dir / "tb").is_dir()


def test_resume_refuses_a_changed_model(resumed_runs, dataset):
    from seisinv.training.trainer import train

    _, resumed = resumed_runs
    changed = tiny_config(dataset, *RESUME_SETTINGS, "model.options.decoder_channels=8", "epochs=4")
    with pytest.raises(ConfigError, match=r"saved config in model\.options\.decoder_channels;"):
        train(changed, resumed.run_dir, resume=True)
    with pytest.raises(ConfigError, match=r"pass resume=True"):
        train(changed, resumed.run_dir)


def test_load_run_rebuilds_model_pipeline_and_survey(resumed_runs, dataset):
    from seisinv.training.run import load_run

    whole, _ = resumed_runs
    run = load_run(whole.run_dir, device="cpu")
    assert run.checkpoint.name == "best" and run.which == "ema"
    assert not run.model.training
    assert run.survey.name == "tiny" and run.pipeline.is_fitted
    assert run.config.model.name == "unet"
    gathers = np.load(dataset["CurveVel_A"] / "data2.npy")[:2]
    velocity = run.predict(gathers)
    assert velocity.shape == (2, 32, 32)
    assert float(velocity.min()) >= run.survey.vmin and float(velocity.max()) <= run.survey.vmax
    # The stored validation MAE is reproduced by predicting the validation samples.
    target = np.load(dataset["CurveVel_A"] / "model2.npy")[:4, 0]
    predicted = run.predict(np.load(dataset["CurveVel_A"] / "data2.npy")[:4])
    best_mae = float(np.abs(predicted.numpy() - target).mean())
    assert best_mae == pytest.approx(run.val["mae"], rel=1e-4)
    raw = load_run(whole.run_dir / "checkpoints" / "last", which="model", device="cpu")
    assert raw.which == "model" and raw.step == 6


def test_load_run_errors(tmp_path, resumed_runs):
    from seisinv.training.run import load_run

    with pytest.raises(CheckpointError, match="no such run"):
        load_run(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="not a run directory"):
        load_run(tmp_path)


def test_cli_trains_then_extends_a_run_with_resume(dataset, tmp_path):
    from typer.testing import CliRunner

    from seisinv.cli.main import app
    from seisinv.models import size_options

    run = tmp_path / "cli-run"
    args = [
        "train",
        "tiny-openfwi",
        "--out",
        str(run),
        "--set",
        f"data.train=[{dataset['FlatVel_A']}]",
        "--set",
        f"data.val=[{dataset['CurveVel_A']}]",
        "--set",
        f"data.survey={dataset['survey']}",
        "--set",
        "data.limit=4",
        "--set",
        "data.val_limit=2",
        "--set",
        "data.transforms=[{name: resample, length: 64}, {name: zscore}]",
        "--set",
        "model.name=unet",
        "--set",
        f"model.options={json.dumps(size_options('unet', 'tiny'))}",
        "--set",
        "batch_size=2",
        "--set",
        "steps=2",
        "--set",
        "logging.progress=false",
        "--set",
        "logging.every_steps=1",
    ]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "done: 2/2 steps" in first.output
    assert yaml.safe_load((run / "config.yaml").read_text())["steps"] == 2
    # No CONFIG: the run's own config.yaml, with a longer schedule.
    second = CliRunner().invoke(app, ["train", "--resume", "--out", str(run), "--set", "steps=3"])
    assert second.exit_code == 0, second.output
    assert "done: 3/3 steps" in second.output
    steps = [e["step"] for e in _train_entries(run) if e["kind"] == "train"]
    assert steps == [1, 2, 3]


def test_ctrl_c_saves_a_checkpoint_at_the_step_boundary(dataset, tmp_path, monkeypatch):
    import signal

    from seisinv.errors import SeisinvError
    from seisinv.training import trainer

    calls = []
    original = trainer.optimizer_step

    def step_then_interrupt(*args, **kwargs):
        calls.append(1)
        norm = original(*args, **kwargs)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)  # as if the user pressed Ctrl-C mid-step
        return norm

    monkeypatch.setattr(trainer, "optimizer_step", step_then_interrupt)
    before = signal.getsignal(signal.SIGINT)
    config = tiny_config(dataset, "data.limit=8", "data.val_limit=2", "batch_size=2", "epochs=3")
    with pytest.raises(SeisinvError, match=r"interrupted at step 2/12; checkpoint saved"):
        trainer.train(config, tmp_path / "run")
    counters = ckpt.read_checkpoint(tmp_path / "run" / "checkpoints" / "last").state["counters"]
    assert (counters["step"], counters["epoch"], counters["micro"]) == (2, 0, 2)
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is back


def test_disk_full_while_training_is_one_line_and_the_run_resumes(dataset, tmp_path, monkeypatch,
                                                                   capsys):
    """A plain OSError(ENOSPC) from the checkpoint writer reaches `seisinv train` as one line
    (no traceback, exit status 1); the last complete checkpoint stays and --resume finishes."""
    import errno

    import seisinv.cli.main as cli_main
    from seisinv.io import write_yaml
    from seisinv.training.trainer import train

    config = tiny_config(dataset, "data.limit=4", "data.val_limit=2", "batch_size=2",
                         "epochs=2", "checkpoint.every_steps=1")
    write_yaml(tmp_path / "config.yaml", config.to_dict())
    run_dir = tmp_path / "run"
    real_save, saves = ckpt.save_checkpoint, []

    def save_until_full(folder, *args, **kwargs):
        saves.append(folder)
        if len(saves) > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(folder))
        return real_save(folder, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_checkpoint", save_until_full)
    monkeypatch.setattr(sys, "argv", ["seisinv", "train", str(tmp_path / "config.yaml"),
                                      "--out", str(run_dir)])
    with pytest.raises(SystemExit) as info:
        cli_main.main()
    assert info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("error: disk full while writing") and "--resume" in err
    assert ckpt.read_checkpoint(run_dir / "checkpoints" / "last").state["counters"]["step"] == 1

    monkeypatch.setattr(ckpt, "save_checkpoint", real_save)
    resumed = train(config, run_dir, resume=True)
    assert resumed.step == resumed.total_steps == 4


# ---- run folder: overwrite, resume with another config, older folders --------------------------
SHORT_RUN = ("data.limit=4", "data.val_limit=2", "batch_size=2")


def test_overwrite_starts_again_deleting_only_what_training_writes(dataset, tmp_path):
    from seisinv.outdir import OutputError
    from seisinv.training.trainer import TRAIN_WRITES, train

    run = tmp_path / "run"
    # Validation from a fold of data.train (folds.csv) and TensorBoard: every file a run writes.
    first = train(tiny_config(dataset, *SHORT_RUN, "data.val=[]", "steps=2",
                              "logging.tensorboard=true"), run)
    assert first.step == 2
    written = {p.name for p in run.iterdir()}
    assert {"checkpoints", "config.yaml", "metrics.jsonl", "tb", "folds.csv"} <= written
    assert written <= set(TRAIN_WRITES.names), written - set(TRAIN_WRITES.names)
    (run / "report").mkdir()  # seisinv report's default folder describes the old run
    (run / "report" / "index.html").write_text("old run")

    again = tiny_config(dataset, *SHORT_RUN, "steps=1")
    with pytest.raises(ConfigError, match="pass overwrite=True to delete it and start again"):
        train(again, run)
    result = train(again, run, overwrite=True)
    assert result.step == result.total_steps == 1
    assert [e["step"] for e in _train_entries(run) if e["kind"] == "train"] == [1]
    assert yaml.safe_load((run / "config.yaml").read_text())["steps"] == 1
    assert not (run / "report").exists() and not (run / "tb").exists()
    assert not (run / "folds.csv").exists()  # this run validates on data.val
    counters = ckpt.read_checkpoint(run / "checkpoints" / "last").state["counters"]
    assert counters["step"] == 1

    (run / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"files training does not write \(notes\.txt\)"):
        train(again, run, overwrite=True)
    assert (run / "notes.txt").exists() and (run / "checkpoints" / "last").is_dir()


def _cli_lines(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """Run ``seisinv ARGS`` as the console script does: (exit status, stderr)."""
    import seisinv.cli.main as cli_main

    monkeypatch.setattr(sys, "argv", ["seisinv", *args])
    code = 0
    try:
        cli_main.main()
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err.strip()


def test_cli_refuses_resume_with_overwrite_in_one_line(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    code, err = _cli_lines(monkeypatch, capsys, "train", "tiny-openfwi", "--out", str(run),
                           "--resume", "--overwrite")
    assert code == 1 and len(err.splitlines()) == 1, err
    assert err == ("error: --overwrite: deletes the run and starts again, resume continues it; "
                   "pass --overwrite or pass --resume, not both")
    assert not run.exists()


def test_cli_resume_with_another_config_names_the_differing_keys(resumed_runs, monkeypatch,
                                                                 capsys):
    _, resumed = resumed_runs
    before = (resumed.run_dir / "metrics.jsonl").read_text()
    code, err = _cli_lines(monkeypatch, capsys, "train", "--resume", "--out",
                           str(resumed.run_dir), "--set", "model.options.decoder_channels=8",
                           "--set", "optimizer.lr=0.5", "--set", "epochs=9")
    assert code == 1 and len(err.splitlines()) == 1, err
    assert err.startswith("error: --resume: the config differs from the run's saved config in "
                          "model.options.decoder_channels, optimizer.lr; only epochs"), err
    assert (resumed.run_dir / "metrics.jsonl").read_text() == before


def test_cli_overwrite_starts_again_in_an_older_run_folder(dataset, tmp_path, monkeypatch,
                                                          capsys):
    """A run folder written by an older seisinv (no lock, no record beyond config.yaml and the
    checkpoints) is recognised by TRAIN_WRITES: refused, then cleared by --overwrite."""
    from seisinv.io import write_yaml

    run = tmp_path / "run"
    (run / "checkpoints" / "last").mkdir(parents=True)
    (run / "checkpoints" / "last" / "model.safetensors").write_text("old weights")
    (run / "config.yaml").write_text("steps: 7\n")
    (run / "metrics.jsonl").write_text('{"kind": "train", "step": 7}\n')
    write_yaml(tmp_path / "config.yaml", tiny_config(dataset, *SHORT_RUN, "steps=1").to_dict())
    args = ("train", str(tmp_path / "config.yaml"), "--out", str(run))
    code, err = _cli_lines(monkeypatch, capsys, *args)
    assert code == 1 and err.startswith(f"error: --out {run}: already holds a run with "
                                        "checkpoints; pass --resume to continue it, pass "
                                        "--overwrite to delete it and start again"), err
    code, err = _cli_lines(monkeypatch, capsys, *args, "--overwrite")
    assert code == 0, err
    assert [(e["kind"], e["step"]) for e in _train_entries(run)] == [("train", 1), ("val", 1)]
    assert ckpt.read_checkpoint(run / "checkpoints" / "last").state["counters"]["step"] == 1


def test_resume_over_regenerated_data_is_refused_naming_it(dataset, tmp_path, monkeypatch,
                                                           capsys):
    """Data regenerated at the same paths (same shapes and sizes, other values) would mix two
    datasets in one model: the resume is refused, naming the data, unless the user accepts."""
    import shutil

    from seisinv.training.trainer import train

    data = tmp_path / "data"
    for name in ("FlatVel_A", "CurveVel_A"):
        shutil.copytree(dataset[name], data / name)
    copied = {**dataset, "FlatVel_A": data / "FlatVel_A", "CurveVel_A": data / "CurveVel_A"}
    config = tiny_config(copied, "steps=2", "batch_size=2", "data.limit=4", "data.val_limit=2")
    run = tmp_path / "run"
    assert train(config, run).step == 2
    saved = ckpt.read_checkpoint(run / "checkpoints" / "last").state["data"]
    assert saved["train"]["paths"] == [str((data / "FlatVel_A").resolve())]
    assert saved["train"]["files"] == 2

    gathers = data / "FlatVel_A" / "data1.npy"
    before = gathers.stat().st_size
    np.save(gathers, np.load(gathers)[::-1].copy())  # same shape and size, other samples
    os.utime(gathers, ns=(gathers.stat().st_atime_ns, gathers.stat().st_mtime_ns + 10**9))
    assert gathers.stat().st_size == before
    code, err = _cli_lines(monkeypatch, capsys, "train", "--resume", "--out", str(run),
                           "--set", "steps=3")
    assert code == 1 and len(err.splitlines()) == 1, err
    assert err.startswith("error: --resume: the data changed since ")
    assert "train (files changed)" in err and "val" not in err.split("saved:")[1].split(";")[0]
    assert "pass --overwrite" in err and "pass --accept-data-change" in err
    assert ckpt.read_checkpoint(run / "checkpoints" / "last").state["counters"]["step"] == 2

    more = load_config(str(run / "config.yaml"), ["steps=3"])
    result = train(more, run, resume=True, accept_data_change=True)
    assert result.step == 3
    # The new checkpoint records the data it now continues on: a further resume goes ahead.
    assert train(load_config(str(run / "config.yaml"), ["steps=4"]), run, resume=True).step == 4
