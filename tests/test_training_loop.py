"""The training loop's state, checkpoints and guards: TrainState round trips, the checkpoint
history of chained runs, fine-tuning from another run, checkpoint permissions and leftovers,
batch-size-1 with BatchNorm, validation checks before the first step, host-device syncs and
non-finite losses. Tiny U-Nets on the random OpenFWI-layout samples of ``test_training``.
"""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
import torch
from test_training import dataset, tiny_config, write_dataset  # noqa: F401  (fixture)

from seisinv.errors import CheckpointError, ConfigError, DataError, SeisinvError
from seisinv.training import checkpoint as ckpt
from seisinv.training.state import TrainState

SHORT = ("data.limit=4", "data.val_limit=2", "batch_size=2", "ema.decay=0.5")


def _counters(folder):
    return ckpt.read_checkpoint(folder).state["counters"]


# ---- state and history ---------------------------------------------------------------------
def test_train_state_round_trips_and_reads_older_counters():
    state = TrainState(step=7, epoch=2, micro=1, best=0.5, best_step=6, total_steps=9,
                       stretch=3, augment_skipped=4, init_from="runs/a:best")
    assert TrainState.from_dict(state.to_dict()) == state
    # A checkpoint written before stretches existed: missing keys take their defaults.
    old = TrainState.from_dict({"step": 3, "epoch": 1, "micro": 0, "best": None,
                                "best_step": None, "total_steps": 6, "world_size": 1})
    assert (old.step, old.stretch, old.augment_skipped) == (3, 0, 0)
    nxt = state.next_stretch()
    assert (nxt.stretch, nxt.stretch_best, nxt.step, nxt.best) == (4, None, 7, 0.5)


@pytest.fixture(scope="module")
def chained(dataset, tmp_path_factory):  # noqa: F811
    """One run trained in two stretches: 2 epochs, then resumed for 2 more."""
    from seisinv.training.trainer import train

    run = tmp_path_factory.mktemp("chained") / "run"
    first = train(tiny_config(dataset, *SHORT, "epochs=2"), run)
    second = train(tiny_config(dataset, *SHORT, "epochs=4"), run, resume=True)
    return run, first, second


def test_checkpoint_history_keeps_each_stretch(chained):
    run, first, second = chained
    assert (first.stretch, second.stretch) == (0, 1)
    history = run / "checkpoints" / "history"
    assert sorted(p.name for p in history.iterdir()) == ["stretch-000", "stretch-001"]
    last0, last1 = _counters(history / "stretch-000" / "last"), _counters(history / "stretch-001"
                                                                            / "last")
    assert (last0["step"], last0["stretch"]) == (first.step, 0)
    assert (last1["step"], last1["stretch"]) == (second.step, 1) and second.step > first.step
    # Each stretch's best is the best of its own validations.
    vals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    vals = [v for v in vals if v["kind"] == "val"]
    for name, steps in (("stretch-000", range(1, first.step + 1)),
                        ("stretch-001", range(first.step + 1, second.step + 1))):
        mine = [v for v in vals if v["step"] in steps]
        best = min(mine, key=lambda v: v["mae"])
        saved = _counters(history / name / "best")
        assert saved["stretch_best_step"] == best["step"]
        assert saved["stretch_best"] == pytest.approx(best["mae"])
    # The run's best is the best over both stretches, and shares its files with a stretch's.
    overall = min(vals, key=lambda v: v["mae"])
    assert _counters(run / "checkpoints" / "best")["best_step"] == overall["step"]
    best_model = run / "checkpoints" / "best" / ckpt.MODEL_FILE
    stretch = "stretch-000" if overall["step"] <= first.step else "stretch-001"
    assert os.path.samefile(best_model, history / stretch / "best" / ckpt.MODEL_FILE)
    # last of stretch 1 is the same checkpoint as checkpoints/last, verified by its manifest.
    ckpt.verify_checkpoint(history / "stretch-001" / "last")
    assert os.path.samefile(run / "checkpoints" / "last" / ckpt.MODEL_FILE,
                            history / "stretch-001" / "last" / ckpt.MODEL_FILE)


def test_history_can_be_switched_off(dataset, tmp_path):  # noqa: F811
    from seisinv.training.trainer import train

    train(tiny_config(dataset, *SHORT, "steps=1", "checkpoint.history=false"), tmp_path / "r")
    assert sorted(p.name for p in (tmp_path / "r" / "checkpoints").iterdir()) == ["best", "last"]


# ---- fine-tuning -------------------------------------------------------------------------------
def test_init_from_starts_from_the_other_runs_weights(chained, dataset, tmp_path):  # noqa: F811
    from seisinv.training.trainer import train

    run, _, _ = chained
    source = ckpt.read_checkpoint(run / "checkpoints" / "last")
    # A learning rate of ~0 leaves the weights where they started: at the source's raw weights.
    result = train(
        tiny_config(dataset, *SHORT, "data.limit=2", "steps=1", f"init_from={run}:last",
                    "init_weights=model",
                    "optimizer.lr=1e-30", "optimizer.weight_decay=0", "schedule.name=constant",
                    "data.val=[]", "folds.val_fold=null"),
        tmp_path / "tuned",
    )
    tuned = ckpt.read_checkpoint(tmp_path / "tuned" / "checkpoints" / "last")
    params = [k for k in source.model if "running" not in k and "num_batches" not in k]
    for key in params:
        torch.testing.assert_close(tuned.model[key], source.model[key], rtol=0, atol=1e-6)
    counters = tuned.state["counters"]
    assert (counters["step"], counters["stretch"], counters["init_from"]) == (1, 0, f"{run}:last")
    assert result.step == 1  # a new run: new optimiser state and counters
    assert tuned.state["optimizer"]["state"][0]["step"].item() == 1.0
    # The same transforms: the input statistics of the source run are kept, although this run
    # trains on other samples (data.limit=2) whose own statistics differ.
    assert json.dumps(tuned.state["pipeline"]["steps"], sort_keys=True, default=str) == \
        json.dumps(source.state["pipeline"]["steps"], sort_keys=True, default=str)


def test_init_from_refuses_other_shapes_and_missing_runs(chained, dataset, tmp_path):  # noqa: F811
    from seisinv.training.trainer import train

    run, _, _ = chained
    wider = tiny_config(dataset, *SHORT, "steps=1", f"init_from={run}",
                        "model.options.decoder_channels=8")
    with pytest.raises(CheckpointError, match=r"init_from .*shape mismatch"):
        train(wider, tmp_path / "wider")
    assert not (tmp_path / "wider" / "checkpoints").exists()
    with pytest.raises(CheckpointError, match=r"init_from .*no such run"):
        train(tiny_config(dataset, *SHORT, f"init_from={tmp_path / 'nowhere'}:best"),
              tmp_path / "x")


def test_parse_init_from():
    from seisinv.training.trainer import parse_init_from

    assert parse_init_from("runs/a") == ("runs/a", "best")
    assert parse_init_from("runs/a:last") == ("runs/a", "last")
    assert parse_init_from("runs/a:best") == ("runs/a", "best")
    assert parse_init_from("C:/runs/a") == ("C:/runs/a", "best")


# ---- checkpoint files --------------------------------------------------------------------------
@pytest.mark.parametrize("umask, folder_mode, file_mode", [(0o022, 0o755, 0o644),
                                                           (0o027, 0o750, 0o640)])
def test_checkpoint_folders_and_files_honour_the_umask(tmp_path, umask, folder_mode, file_mode):
    from seisinv import io

    previous = os.umask(umask)
    io._umask.cache_clear()
    try:
        folder = ckpt.save_checkpoint(tmp_path / "last", {"w": torch.ones(2)}, None,
                                      {"counters": {"step": 1}}, {"name": "x"})
        linked = ckpt.link_checkpoint(folder, tmp_path / "copy")
    finally:
        os.umask(previous)
        io._umask.cache_clear()
    for path in (folder, linked):
        assert stat.S_IMODE(path.stat().st_mode) == folder_mode
        for child in path.iterdir():
            assert stat.S_IMODE(child.stat().st_mode) == file_mode, child.name


def test_interrupted_saves_are_cleaned_at_the_next_start(dataset, tmp_path):  # noqa: F811
    from seisinv.training.trainer import train

    config = tiny_config(dataset, *SHORT, "steps=2")
    run = tmp_path / "run"
    train(config, run, stop_after_steps=1)
    folders = run / "checkpoints"
    folders.mkdir(parents=True, exist_ok=True)
    train(tiny_config(dataset, *SHORT, "steps=1"), run)  # writes last (steps done: 1)
    leftover = folders / ".last.k1ll3d.tmp"
    leftover.mkdir()
    (leftover / ckpt.MODEL_FILE).write_bytes(b"\0" * 1000)
    stale_old = folders / "last.old"
    stale_old.mkdir()
    train(tiny_config(dataset, *SHORT, "steps=2"), run, resume=True)
    assert not leftover.exists() and not stale_old.exists()
    assert sorted(p.name for p in folders.iterdir() if p.name.startswith(".")) == []


def test_clean_temporaries_keeps_an_old_copy_that_is_the_only_one(tmp_path):
    only = tmp_path / "last.old"
    only.mkdir()
    (only / ckpt.MANIFEST).write_text("{}")
    (tmp_path / ".best.x.tmp").mkdir()
    removed = ckpt.clean_temporaries(tmp_path)
    assert [p.name for p in removed] == [".best.x.tmp"] and only.exists()


# ---- batch size 1 and validation checks ---------------------------------------------------------
def test_batch_size_one_with_batchnorm_is_refused_naming_the_option(dataset, tmp_path):  # noqa: F811
    from seisinv.training.trainer import train

    # InversionNet's 1 x 1 bottleneck has one value per channel for one sample.
    with pytest.raises(ConfigError, match=r"batch_size=1: model 'inversionnet' has BatchNorm"):
        train(tiny_config(dataset, *SHORT, "batch_size=1", "model.name=inversionnet",
                          "model.options={width: 0.25}"), tmp_path / "a")
    with pytest.raises(ConfigError, match=r"data.train: 1 training sample"):
        train(tiny_config(dataset, "data.limit=1", "batch_size=4", "model.name=inversionnet",
                          "model.options={width: 0.25}"), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_batch_size_one_trains_a_batchnorm_model_whose_features_stay_larger_than_1x1(
    dataset, tmp_path  # noqa: F811
):
    from seisinv.training.trainer import train

    result = train(tiny_config(dataset, *SHORT, "batch_size=1", "steps=2"), tmp_path / "run")
    assert result.step == 2 and all(np.isfinite(e["loss"]) for e in result.history)


def test_batch_size_one_trains_a_model_without_batchnorm(dataset, tmp_path):  # noqa: F811
    from seisinv.training.trainer import train

    config = tiny_config(dataset, *SHORT, "batch_size=1", "steps=2", "model.name=inversionnet",
                         "model.options={width: 0.25, norm: instance}")
    result = train(config, tmp_path / "run")
    assert result.step == 2 and all(np.isfinite(e["loss"]) for e in result.history)


def test_a_bad_validation_sample_stops_the_run_before_the_first_step(
    dataset, tmp_path, tiny_survey  # noqa: F811
):
    from seisinv.training.trainer import train

    bad = write_dataset(tmp_path / "bad", tiny_survey, n=3, seed=5)
    gathers = np.load(bad["CurveVel_A"] / "data2.npy")
    gathers[2, 0, 10, 3] = np.nan
    np.save(bad["CurveVel_A"] / "data2.npy", gathers)
    config = tiny_config(dataset, *SHORT, f"data.val=[{bad['CurveVel_A']}]", "data.val_limit=3")
    with pytest.raises(DataError, match=r"data2\.npy\[2\].*NaN"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


# ---- host-device synchronisation ----------------------------------------------------------------
def test_sync_counter_counts_host_reads():
    from seisinv.training.syncs import SyncCounter, to_host

    x = torch.arange(3.0)
    with SyncCounter() as syncs:
        y = (x * 2).sum()
        z = y + 1
    assert syncs.count == 0
    with SyncCounter() as syncs:
        float(z)
        z.item()
        if z > 0:
            pass
        values = to_host([y, z, torch.tensor(5)])
    assert syncs.count == 4 and values == [6.0, 7.0, 5.0]
    assert "test_training_loop.py" in syncs.where[0]


def test_no_host_reads_between_logging_steps(dataset, tmp_path, monkeypatch):  # noqa: F811
    """Count host reads from the start of one step to the start of the next (``lr_at`` is called
    once at the start of each step): zero except where the loop logs or saves."""
    from seisinv.training import trainer
    from seisinv.training.syncs import SyncCounter

    marks: list[int] = []
    original = trainer.lr_at
    counter = SyncCounter()

    def marked(*args, **kwargs):
        marks.append(counter.count)
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer, "lr_at", marked)
    config = tiny_config(dataset, "data.limit=8", "data.val=[]", "folds.val_fold=null",
                         "batch_size=2", "steps=4", "logging.every_steps=3", "ema.enabled=true")
    with counter:
        trainer.train(config, tmp_path / "run")
    per_step = np.diff(marks).tolist()  # steps 1, 2, 3 (step 4 ends the run)
    assert per_step == [0, 0, 1], (per_step, counter.where)


def test_a_non_finite_loss_stops_at_the_logging_step_without_saving(
    dataset, tmp_path  # noqa: F811
):
    from seisinv.training.trainer import train

    config = tiny_config(dataset, *SHORT, "steps=4", "logging.every_steps=2",
                         "loss.terms=[{name: l1, weight: .nan}]")
    with pytest.raises(SeisinvError, match=r"not finite in 2 micro-batch\(es\) between steps 1 "
                                           r"and 2"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints" / "last").exists()
