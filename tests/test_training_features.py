"""Training features: timm's cosine-with-restarts schedule, sampling weights, per-family
subsampling, the non-finite augmentation guard, Weights & Biases logging (with a stand-in
module), the family-classifier task, auto batch size / workers, channels_last, torch.compile,
EMA on older timm, and the torchrun hint.
"""

from __future__ import annotations

import math
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_training import dataset, tiny_config  # noqa: F401  (fixture)

from seisinv.errors import ConfigError, DataError
from seisinv.training.config import ScheduleConfig

SHORT = ("data.limit=4", "data.val_limit=2", "batch_size=2", "ema.decay=0.5")


# ---- timm CosineLRScheduler -------------------------------------------------------------------
def _cosine(t: float, period: float, high: float, low: float) -> float:
    return low + 0.5 * (high - low) * (1 + math.cos(math.pi * t / period))


def test_timm_cosine_restarts_follow_the_cosine_with_warm_restarts_formula():
    from seisinv.training.schedule import first_cycle_steps, lr_at

    schedule = ScheduleConfig(name="timm_cosine", warmup_steps=4, warmup_start=0.1, cycles=3,
                              min_lr=0.01, cycle_decay=0.5)
    total = 4 + 3 * 10
    assert first_cycle_steps(total, schedule) == 10
    lrs = [lr_at(step, total, 1.0, schedule) for step in range(total + 3)]
    # Linear warmup from 0.1 to 1 over 4 steps (timm: warmup_lr_init + t * (lr - init) / warmup_t)
    assert lrs[:4] == pytest.approx([0.1 + 0.9 * t / 4 for t in range(4)])
    for cycle, peak in enumerate((1.0, 0.5, 0.25)):
        for t in range(10):
            assert lrs[4 + 10 * cycle + t] == pytest.approx(_cosine(t, 10, peak, 0.01)), (cycle, t)
    assert lrs[total:] == pytest.approx([0.01] * 3)  # after the last cycle: min_lr


def test_timm_cosine_cycle_mul_fills_the_run():
    from seisinv.training.schedule import first_cycle_steps, lr_at

    schedule = ScheduleConfig(name="timm_cosine", cycles=2, cycle_mul=2.0)
    assert first_cycle_steps(30, schedule) == 10  # cycles of 10 and 20 steps
    assert lr_at(10, 30, 1.0, schedule) == pytest.approx(1.0)  # restart
    assert lr_at(20, 30, 1.0, schedule) == pytest.approx(_cosine(10, 20, 1.0, 0.0))


# ---- sampling -------------------------------------------------------------------------------------
def test_weighted_epoch_sampler_draws_in_proportion_and_reproducibly():
    from seisinv.training.distributed import EpochSampler

    weights = [0.0, 1.0, 3.0, 0.0]
    sampler = EpochSampler(4, seed=3, weights=weights)
    draws = []
    for epoch in range(500):
        sampler.set_epoch(epoch)
        draws += sampler.order()
    counts = np.bincount(draws, minlength=4)
    assert counts[0] == counts[3] == 0
    assert counts[2] / counts[1] == pytest.approx(3.0, rel=0.15)
    sampler.set_epoch(7)
    again = EpochSampler(4, seed=3, weights=weights)
    again.set_epoch(7)
    assert sampler.order() == again.order()
    # Sharded like the unweighted sampler: two ranks split one epoch's draws.
    ranks = [EpochSampler(4, seed=3, weights=weights, rank=r, world_size=2) for r in (0, 1)]
    for r in ranks:
        r.set_epoch(7)
    assert sorted(ranks[0].order() + ranks[1].order()) == sorted(sampler.order())


def _source(families, ids=None, paths=None):
    ids = ids or [f"s{i}" for i in range(len(families))]
    paths = paths or [f"/data/x/{i}.npy" for i in range(len(families))]
    return SimpleNamespace(families=families, ids=ids,
                           refs=[SimpleNamespace(path=p) for p in paths])


def test_sample_weights_by_family_pattern_and_source():
    from seisinv.training.data import sample_weights

    families = ["Style_A", "Style_B", "FlatVel_A", "FlatVel_A"]
    paths = ["/d/style/0.npy", "/d/style/1.npy", "/d/flat/0.npy", "/d/flat/1.npy"]
    source = _source(families, paths=paths)
    assert sample_weights(source, [0, 1, 2, 3], {}, []) is None
    weights = sample_weights(source, [0, 1, 2, 3], {"Style_*": 2.0, "/d/flat": 0.5},
                             ["/d/style", "/d/flat"])
    assert weights == [2.0, 2.0, 0.5, 0.5]
    assert sample_weights(source, [2, 3], {"FlatVel_A": 3.0, "/d/flat": 0.5}, ["/d/flat"]) == \
        [1.5, 1.5]
    with pytest.raises(ConfigError, match=r"data.weights.CurveVel_A: matches no training"):
        sample_weights(source, [0, 1, 2, 3], {"CurveVel_A": 2.0}, [])
    with pytest.raises(ConfigError, match="every training sample has weight 0"):
        sample_weights(source, [2, 3], {"FlatVel_A": 0.0}, [])


def test_fraction_per_family_keeps_a_stable_share_of_each_family():
    from seisinv.training.data import subsample_families

    families = ["A"] * 10 + ["B"] * 5 + [None] * 2
    source = _source(families)
    indices = list(range(17))
    kept = subsample_families(source, indices, 0.3, seed=1)
    assert sum(families[i] == "A" for i in kept) == 3 and sum(families[i] == "B" for i in kept) == 2
    assert sum(families[i] is None for i in kept) == 1
    # Same set whatever the order; another seed picks another set.
    assert sorted(subsample_families(source, indices[::-1], 0.3, seed=1)) == sorted(kept)
    assert sorted(subsample_families(source, indices, 0.3, seed=2)) != sorted(kept)
    only_a = subsample_families(source, indices, {"A": 0.5}, seed=1)
    assert sum(families[i] == "A" for i in only_a) == 5 and len(only_a) == 12
    with pytest.raises(ConfigError, match="no training sample of family C"):
        subsample_families(source, indices, {"C": 0.5}, seed=1)


def test_weights_and_fractions_reach_the_run(dataset, tmp_path):  # noqa: F811
    from seisinv.training.data import build_data

    config = tiny_config(dataset, f"data.train=[{dataset['FlatVel_A']}, {dataset['CurveVel_A']}]",
                         "data.val=[]", "folds.val_fold=null",
                         "data.fraction_per_family={FlatVel_A: 0.25}",
                         "data.weights={CurveVel_A: 4}")
    data = build_data(config)
    families = [data.train.source.families[i] for i in data.train.indices]
    assert families.count("FlatVel_A") == 2 and families.count("CurveVel_A") == 8
    assert data.weights == [1.0 if f == "FlatVel_A" else 4.0 for f in families]


# ---- the non-finite augmentation guard ------------------------------------------------------------
def test_dataset_returns_an_augmented_sample_that_became_non_finite_unaugmented(
    dataset  # noqa: F811
):
    from seisinv.data import SeismicDataset, build_pipeline, open_dataset
    from seisinv.survey import load_survey

    survey = load_survey(str(dataset["survey"]))
    source = open_dataset(dataset["FlatVel_A"], survey)

    def poison_odd(gathers, velocity, rng):
        return (gathers * np.float32(np.inf) if rng.random() < 0.5 else gathers + 1), velocity

    data = SeismicDataset(source, build_pipeline([], survey), augment=poison_odd, seed=0)
    items = [data[i] for i in range(8)]
    skipped = [item["augment_skipped"] for item in items]
    assert any(skipped) and not all(skipped)
    for i, item in enumerate(items):
        raw = torch.from_numpy(source[i].gathers)
        expected = raw if item["augment_skipped"] else raw + 1
        assert torch.equal(item["gathers"], expected)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_training_counts_and_logs_skipped_augmentations(dataset, tmp_path):  # noqa: F811
    from seisinv.training.trainer import train

    # x 1e39 overflows float32: every augmented sample is non-finite.
    config = tiny_config(dataset, *SHORT, "steps=2", "logging.every_steps=1",
                         "data.augment=[{name: amplitude, low: 1.0e+39, high: 1.0e+39}]")
    result = train(config, tmp_path / "run")
    assert result.augment_skipped == 4
    assert [e["augment_skipped"] for e in result.history] == [2, 2]
    assert all(np.isfinite(e["loss"]) for e in result.history)


# ---- Weights & Biases --------------------------------------------------------------------------
def test_wandb_logging_uses_offline_mode_and_logs_each_entry(dataset, tmp_path, monkeypatch):  # noqa: F811
    from seisinv.training.trainer import train

    calls: dict = {"log": [], "finished": False}

    class FakeRun:
        def log(self, values, step):
            calls["log"].append((step, values))

        def finish(self):
            calls["finished"] = True

    def init(**kwargs):
        calls["init"] = kwargs
        return FakeRun()

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=init))
    config = tiny_config(dataset, *SHORT, "steps=2", "logging.wandb=true")
    train(config, tmp_path / "run")
    assert calls["init"]["mode"] == "offline" and calls["init"]["project"] == "seisinv"
    assert calls["init"]["dir"] == str(tmp_path / "run")
    assert [step for step, _ in calls["log"] if "train/loss" in _] == [1, 2]
    val = [values for _, values in calls["log"] if "val/mae" in values]
    assert val and "val/CurveVel_A/mape" in val[0]
    assert calls["finished"]


def test_wandb_missing_is_a_config_error_naming_the_extra(dataset, tmp_path, monkeypatch):  # noqa: F811
    from seisinv.training.trainer import train

    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'seisinv\[wandb\]'"):
        train(tiny_config(dataset, *SHORT, "steps=1", "logging.wandb=true"), tmp_path / "run")


# ---- the family classifier task ------------------------------------------------------------------
STUB = "test_family_stub"


def _register_stub():
    from seisinv.models.registry import MODELS

    if STUB in MODELS:
        return

    class Stub(torch.nn.Module):
        """The family-classifier interface: ``families`` and velocity (B, nz, nx) -> logits."""

        def __init__(self, survey, families):
            super().__init__()
            self.families = list(families)
            self.scale = (survey.vmin, survey.vmax)
            self.head = torch.nn.Linear(3, len(families))

        def forward(self, velocity):
            v = (velocity - self.scale[0]) / (self.scale[1] - self.scale[0])
            lateral = (v[:, :, -1] - v[:, :, 0]).abs().mean(dim=1)
            return self.head(torch.stack([v.mean(dim=(1, 2)), v.std(dim=(1, 2)), lateral], 1))

    @MODELS.register(STUB)
    def build(survey, families: list = ("CurveVel_A", "FlatVel_A")):
        return Stub(survey, families)


def test_family_task_trains_a_classifier_on_velocity_maps(dataset, tmp_path):  # noqa: F811
    from seisinv.training.run import load_run
    from seisinv.training.trainer import train

    _register_stub()
    config = tiny_config(
        dataset, f"data.train=[{dataset['FlatVel_A']}, {dataset['CurveVel_A']}]",
        "data.val=[]", "folds.k=2", "folds.val_fold=0", "task=family", f"model.name={STUB}",
        "model.options={}", "batch_size=4", "steps=6", "optimizer.lr=0.05", "ema.enabled=false",
        "checkpoint={}",
    )
    # The recipe's best_metric (mae) was dropped: a family run selects by accuracy.
    assert (config.checkpoint.best_metric, config.checkpoint.best_mode) == ("accuracy", "max")
    result = train(config, tmp_path / "run")
    assert set(result.last_val) >= {"accuracy", "loss", "n", "families"}
    assert 0.0 <= result.last_val["accuracy"] <= 1.0
    assert set(result.last_val["families"]) == {"FlatVel_A", "CurveVel_A"}
    assert "cross_entropy" in result.history[0]
    # The accuracy is the share of validation maps whose argmax is their family.
    run = load_run(tmp_path / "run", device="cpu")
    from seisinv.training.data import build_data

    val = build_data(config).val
    hits = [int(run.model(val[i]["velocity"][None]).argmax()) ==
            run.model.families.index(val[i]["family"]) for i in range(len(val))]
    assert result.best == pytest.approx(np.mean(hits))


def test_family_task_refuses_unknown_families_and_velocity_metrics(dataset, tmp_path):  # noqa: F811
    from seisinv.training.config import config_from_dict
    from seisinv.training.trainer import train

    _register_stub()
    config = tiny_config(dataset, *SHORT, "task=family", f"model.name={STUB}",
                         "model.options={families: [FlatVel_A, Style_A]}", "checkpoint={}")
    with pytest.raises(DataError, match=r"data.val: .*found CurveVel_A"):
        train(config, tmp_path / "run")
    with pytest.raises(ConfigError, match="task family validates accuracy"):
        config_from_dict({"task": "family", "checkpoint": {"best_metric": "mae"}})
    with pytest.raises(ConfigError, match="no `families` list"):
        train(tiny_config(dataset, *SHORT, "task=family", "checkpoint={}"), tmp_path / "unet")


# ---- auto sizes, layouts, compile, older timm, torchrun --------------------------------------------
def test_suggested_workers_and_batch_size():
    from seisinv.training.auto import MAX_BATCH, suggest_batch_size, suggest_workers

    assert suggest_workers(cpus=16, processes=1) == 8
    assert suggest_workers(cpus=16, processes=4) == 3
    assert suggest_workers(cpus=2, processes=1) == 1
    assert suggest_workers(cpus=1, processes=1) == 0
    gib = 2**30
    # 80 GB free, 2 GB fixed, 100 MB per sample: 0.8 * 80 - 2 = 62 GB -> 620 -> 512 (power of 2)
    assert suggest_batch_size(80 * gib, 2 * gib, 0.1 * gib, 10**6) == min(512, MAX_BATCH)
    assert suggest_batch_size(10 * gib, 0, 1 * gib, 10**6) == 8
    assert suggest_batch_size(80 * gib, 0, 1.0, 48) == 32  # never more than the samples
    assert suggest_batch_size(1 * gib, 2 * gib, 1.0, 100) == 1


def test_auto_batch_and_workers_are_resolved_and_saved(dataset, tmp_path):  # noqa: F811
    import yaml

    from seisinv.training.trainer import train

    config = tiny_config(dataset, "data.limit=4", "data.val_limit=2", "batch_size=auto",
                         "workers=auto", "steps=1")
    train(config, tmp_path / "run")
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["batch_size"] == 4  # CPU: 8, capped at the 4 training samples
    assert isinstance(saved["workers"], int)
    # Resuming with batch_size: auto matches the resolved value.
    more = tiny_config(dataset, "data.limit=4", "data.val_limit=2", "batch_size=auto",
                       "workers=0", "steps=2")
    assert train(more, tmp_path / "run", resume=True).step == 2


def test_channels_last_gives_the_same_training_step(dataset, tmp_path):  # noqa: F811
    from seisinv.training.trainer import train

    plain = train(tiny_config(dataset, *SHORT, "steps=2"), tmp_path / "a")
    last = train(tiny_config(dataset, *SHORT, "steps=2", "channels_last=true"), tmp_path / "b")
    assert [e["loss"] for e in last.history] == pytest.approx(
        [e["loss"] for e in plain.history], rel=1e-4)


def test_compiled_model_matches_eager_on_cpu():
    try:
        import torch._dynamo  # noqa: F401
    except ImportError:
        pytest.skip("torch.compile is not available")
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(4, 1, 1))
    x = torch.randn(2, 2, 8, 8)
    try:
        compiled = torch.compile(model)
        out = compiled(x)
    except Exception as exc:  # no C compiler, unsupported platform
        pytest.skip(f"torch.compile does not work here ({type(exc).__name__})")
    torch.testing.assert_close(out, model(x), rtol=1e-4, atol=1e-5)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_ema_works_with_a_timm_without_the_dtype_keyword(monkeypatch):
    import timm.utils

    from seisinv.training.config import EmaConfig
    from seisinv.training.optim import create_ema

    seen = {}
    original = timm.utils.ModelEmaV3

    class OldModelEmaV3(original):
        def __init__(self, model, decay=0.9999, min_decay=0.0, update_after_step=0,
                     use_warmup=False, warmup_gamma=1.0, warmup_power=2 / 3, device=None,
                     foreach=True, exclude_buffers=False):
            seen["called"] = True
            super().__init__(model, decay=decay, use_warmup=use_warmup)

    monkeypatch.setattr(timm.utils, "ModelEmaV3", OldModelEmaV3)
    model = torch.nn.Linear(2, 2)
    ema = create_ema(model, EmaConfig(decay=0.5))
    assert seen["called"] and ema.module.weight.dtype == torch.float32
    ema.update(model, step=1)


def test_torchrun_hint():
    from seisinv.training.distributed import torchrun_hint

    assert torchrun_hint(1, ["train", "x.yaml"]) is None
    assert torchrun_hint(4, ["train", "x.yaml"], world_size=4) is None
    hint = torchrun_hint(4, ["train", "x.yaml", "--set", "data.train=[a b]"])
    assert "torchrun --nproc_per_node 4 -m seisinv.cli.main train x.yaml --set " \
           "'data.train=[a b]'" in hint


def test_cli_prints_the_torchrun_command_when_several_gpus_are_visible(dataset, tmp_path,  # noqa: F811
                                                                       monkeypatch):
    from typer.testing import CliRunner

    from seisinv.cli.main import app

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    args = ["train", "tiny-openfwi", "--out", str(tmp_path / "run"), "--set", "device=cpu"]
    monkeypatch.setattr(sys, "argv", ["seisinv", *args])
    result = CliRunner().invoke(app, args)  # cpu: no hint; fails later on missing data.train
    assert "--nproc_per_node" not in result.output
    args = ["train", "tiny-openfwi", "--out", str(tmp_path / "run2")]  # fails: no data.train
    monkeypatch.setattr(sys, "argv", ["seisinv", *args])
    result = CliRunner().invoke(app, args)
    assert "torchrun --nproc_per_node 2 -m seisinv.cli.main train tiny-openfwi" in result.output


def test_union_fields_report_one_readable_error():
    from seisinv.training.config import config_from_dict

    with pytest.raises(ConfigError, match=r"batch_size: Input should be greater than or equal to "
                                          r"1 or Input should be 'auto'$"):
        config_from_dict({"batch_size": 0})


def test_persistent_workers_draw_each_epochs_augmentation(dataset, tmp_path):  # noqa: F811
    """One worker process kept across epochs gives the losses of loading in the main process:
    the epoch reaches the worker with every index, so epoch 2 draws new augmentations."""
    from seisinv.training.trainer import train

    def losses(workers):
        config = tiny_config(dataset, *SHORT, "epochs=2", f"workers={workers}",
                             "data.augment=[{name: noise, level: 0.5, p: 1.0}]")
        return [e["loss"] for e in train(config, tmp_path / f"w{workers}").history]

    assert losses(1) == losses(0)


def test_batch_probe_extrapolates_the_measured_peak_memory(monkeypatch):
    """probe_batch_size on a stand-in CUDA memory model: 50 MB fixed + 40 MB per sample."""
    from seisinv.training import auto

    mb = 2**20
    peak = {"value": 0}
    fake = types.SimpleNamespace(
        mem_get_info=lambda device: (8 * 1024 * mb, 80 * 1024 * mb),
        synchronize=lambda device: None,
        reset_peak_memory_stats=lambda device: peak.update(value=0),
        memory_allocated=lambda device: 0,
        max_memory_allocated=lambda device: peak["value"],
    )
    monkeypatch.setattr(auto.torch, "cuda", fake)
    sizes = []

    def step(size):
        sizes.append(size)
        peak["value"] = 50 * mb + 40 * mb * size

    batch = auto.probe_batch_size(step, torch.device("cuda"), samples=10_000, param_bytes=10 * mb)
    assert sizes == [1, auto.PROBE_BATCH]
    # budget 0.8 * 8 GiB - (50 MB + 2 x 10 MB of AdamW moments) = 6483 MB -> 162 samples -> 128
    assert batch == 128
    assert auto.probe_batch_size(step, torch.device("cpu"), samples=5, param_bytes=0) == 5
