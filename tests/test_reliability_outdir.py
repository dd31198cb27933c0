"""seisinv.outdir: locks, provenance records, overlap and foreign-folder refusal, no stubs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seisinv.outdir import (
    LOCK_NAME,
    RECORD_NAME,
    LockedError,
    OutputError,
    check_out_not_inside_inputs,
    claim_output,
    compare,
    dataset_identity,
    lock_output,
    read_lock,
)

HOLDER = """
import sys, time
from seisinv.outdir import lock_output
with lock_output(sys.argv[1], "seisinv test-holder"):
    print("locked", flush=True)
    time.sleep(60)
"""


def _start_holder(out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE,
                            env=env, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_is_refused_naming_the_holder_pid_and_kill9_frees_the_lock(tmp_path):
    out = tmp_path / "out"
    proc = _start_holder(out)
    try:
        holder = read_lock(out / LOCK_NAME)
        assert holder["pid"] == proc.pid and holder["command"] == "seisinv test-holder"
        with pytest.raises(LockedError, match=f"PID {proc.pid}"), lock_output(out, "seisinv x"):
            pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # The dead holder's lock file is still there; taking it over must work.
    assert (out / LOCK_NAME).exists()
    with lock_output(out, "seisinv x") as lock:
        assert read_lock(lock)["pid"] == os.getpid()
    assert not (out / LOCK_NAME).exists()


def test_lock_is_reentrant_in_one_process_and_removes_a_folder_it_created(tmp_path):
    out = tmp_path / "a" / "b"
    with lock_output(out, "outer"), lock_output(out, "inner"):
        assert (out / LOCK_NAME).exists()
    assert not (tmp_path / "a").exists()


def test_provenance_mismatch_names_the_setting_and_overwrite_starts_again(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.npy").write_bytes(b"123")
    out = tmp_path / "out"
    with claim_output(out, "seisinv t", {"data": dataset_identity(data), "iters": 5}):
        (out / "result.txt").write_text("iters 5")
    with claim_output(out, "seisinv t", {"data": dataset_identity(data), "iters": 5}):
        pass  # same provenance: resume is allowed
    with pytest.raises(OutputError, match=r"iters 5 \(now 10\)"), claim_output(
        out, "seisinv t", {"data": dataset_identity(data), "iters": 10}
    ):
        pass
    assert (out / "result.txt").exists()
    with claim_output(out, "seisinv t", {"data": dataset_identity(data), "iters": 10},
                      overwrite=True):
        assert not (out / "result.txt").exists()
    assert compare(out, {"data": dataset_identity(data), "iters": 10}) == []


def test_changed_input_files_are_detected(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.npy").write_bytes(b"123")
    before = dataset_identity(data)
    time.sleep(0.01)
    (data / "x.npy").write_bytes(b"1234")
    after = dataset_identity(data)
    assert before["fingerprint"] != after["fingerprint"] and before["paths"] == after["paths"]
    out = tmp_path / "out"
    with claim_output(out, "seisinv t", {"data": before}):
        (out / "r").write_text("")
    with pytest.raises(OutputError, match="data .files changed."), claim_output(
        out, "seisinv t", {"data": after}
    ):
        pass


def test_overlapping_outputs_are_refused(tmp_path):
    models = tmp_path / "models.npy"
    models.write_bytes(b"x")
    with pytest.raises(OutputError, match="is the input"):
        check_out_not_inside_inputs(models, [models])
    with pytest.raises(OutputError, match="inside the input"):
        check_out_not_inside_inputs(tmp_path / "sub", [tmp_path])
    with pytest.raises(OutputError, match="contains the input"):
        check_out_not_inside_inputs(tmp_path, [models])
    check_out_not_inside_inputs(tmp_path / "out", [models, None])


def test_foreign_folder_is_refused_and_left_untouched(tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_text("x")
    with pytest.raises(OutputError, match="not an output of"), claim_output(
        out, "seisinv t", {}, overwrite=True
    ):
        pass
    assert sorted(p.name for p in out.iterdir()) == ["holiday.jpg"]


def test_older_output_is_recognised_and_only_its_own_files_cleared(tmp_path):
    from seisinv.outdir import Writes

    writes = Writes("made.json", ("made.json", "maps"))
    out = tmp_path / "old"
    (out / "maps").mkdir(parents=True)
    (out / "made.json").write_text("{}")
    (out / "maps" / "a.npy").write_text("x")
    with pytest.raises(OutputError, match="pass overwrite=True"), claim_output(
        out, "seisinv t", {}, writes=writes
    ):
        pass
    assert sorted(p.name for p in out.iterdir()) == ["made.json", "maps"]
    with claim_output(out, "seisinv t", {"a": 1}, writes=writes, overwrite=True):
        assert sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME) == [RECORD_NAME]
    # Without the marker the same content is foreign, even with overwrite.
    other = tmp_path / "other"
    (other / "maps").mkdir(parents=True)
    with pytest.raises(OutputError, match="not an output of"), claim_output(
        other, "seisinv t", {}, writes=writes, overwrite=True
    ):
        pass
    assert (other / "maps").is_dir()


def test_other_command_output_is_refused(tmp_path):
    out = tmp_path / "o"
    with claim_output(out, "seisinv fwi", {}):
        (out / "x").write_text("")
    with pytest.raises(OutputError, match="seisinv fwi"), claim_output(out, "seisinv predict", {}):
        pass


def test_a_failed_first_run_leaves_no_stub(tmp_path):
    out = tmp_path / "new"
    with pytest.raises(RuntimeError), claim_output(out, "seisinv t", {"a": 1}):
        assert (out / RECORD_NAME).exists()
        raise RuntimeError("boom")
    assert not out.exists()


def test_a_refused_claim_inside_an_existing_folder_writes_nothing(tmp_path):
    out = tmp_path / "p"
    out.mkdir()
    (out / "keep").write_text("")
    before = sorted(os.listdir(out))
    with pytest.raises(OutputError), claim_output(out, "seisinv t", {}):
        pass
    assert sorted(os.listdir(out)) == before


def test_file_output_records_beside_it(tmp_path):
    out = tmp_path / "g.npy"
    with claim_output(out, "seisinv simulate", {"n": 1}, is_file=True):
        out.write_bytes(b"x")
    assert json.loads((tmp_path / f".g.npy.{RECORD_NAME}").read_text())["provenance"] == {"n": 1}
    with pytest.raises(OutputError, match="n 1 .now 2."), claim_output(
        out, "seisinv simulate", {"n": 2}, is_file=True
    ):
        pass
    other = tmp_path / "user.npy"
    other.write_bytes(b"x")
    with pytest.raises(OutputError, match="was not written by"), claim_output(
        other, "seisinv simulate", {}, is_file=True
    ):
        pass


def test_out_that_cannot_be_created_is_one_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="not a folder"), lock_output(blocker, "t"):
        pass
    with pytest.raises(OutputError, match="cannot create"), lock_output(blocker / "x", "t"):
        pass
    with pytest.raises(OutputError, match="cannot create"), lock_output("/proc/x", "t"):
        pass


def test_small_files_rewritten_unchanged_keep_the_identity(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.csv").write_text("id\na\n")
    before = dataset_identity(data)
    time.sleep(0.01)
    (data / "manifest.csv").write_text("id\na\n")  # same content, new mtime
    assert dataset_identity(data) == before
    (data / "manifest.csv").write_text("id\nb\n")  # same size, other content
    assert dataset_identity(data)["fingerprint"] != before["fingerprint"]


# ---- train's run folder (seisinv.training.trainer.prepare_run_dir, TRAIN_WRITES) -------------
def _older_run(run: Path) -> Path:
    """A run folder as any seisinv wrote it, before or after provenance records (train keeps
    its record in config.yaml and the checkpoints): checkpoints, log, TensorBoard, a report."""
    (run / "checkpoints" / "last").mkdir(parents=True)
    (run / "checkpoints" / "last" / "model.safetensors").write_text("old weights")
    (run / "tb").mkdir()
    (run / "tb" / "events.out.tfevents.1").write_text("old")
    (run / "report").mkdir()
    (run / "config.yaml").write_text("steps: 5\n")
    (run / "metrics.jsonl").write_text('{"kind": "train", "step": 5}\n')
    return run


def test_train_overwrite_clears_exactly_what_training_writes(tmp_path):
    from seisinv.errors import ConfigError
    from seisinv.training.trainer import TRAIN_WRITES, prepare_run_dir

    run = _older_run(tmp_path / "run")
    with pytest.raises(ConfigError, match="already holds a run with checkpoints; pass "
                       "resume=True to continue it, pass overwrite=True to delete it"):
        prepare_run_dir(run, resume=False, overwrite=False)
    prepare_run_dir(run, resume=True, overwrite=False)  # resuming deletes nothing
    assert (run / "checkpoints" / "last" / "model.safetensors").exists()
    # A torchrun rank other than 0 neither checks nor clears: rank 0 does.
    prepare_run_dir(run, resume=False, overwrite=False, is_main=False)
    prepare_run_dir(run, resume=False, overwrite=True, is_main=False)
    assert (run / "metrics.jsonl").exists()
    (run / LOCK_NAME).write_text("{}")  # the lock is kept
    prepare_run_dir(run, resume=False, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]
    assert set(TRAIN_WRITES.names) >= {"checkpoints", "config.yaml", "metrics.jsonl", "tb"}


def test_train_run_folder_with_other_files_is_refused_and_left_untouched(tmp_path):
    from seisinv.training.trainer import prepare_run_dir

    run = _older_run(tmp_path / "run")
    (run / "notes.txt").write_text("mine")
    before = sorted(str(p.relative_to(run)) for p in run.rglob("*"))
    with pytest.raises(OutputError, match=r"run_dir .*run: a run folder that also holds files "
                       r"training does not write \(notes\.txt\); move them away"):
        prepare_run_dir(run, resume=False, overwrite=True)
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == before
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_text("x")
    with pytest.raises(OutputError, match=r"not empty and not a run folder \(found a\.jpg\)"):
        prepare_run_dir(photos, resume=False, overwrite=False)
    assert (photos / "a.jpg").exists()


def test_a_new_run_replaces_one_stopped_before_its_first_checkpoint(tmp_path):
    """Nothing to resume there: its config.yaml and log lines go, so they never mix with the
    new run's."""
    from seisinv.training.trainer import prepare_run_dir

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("steps: 5\n")
    (run / "metrics.jsonl").write_text('{"kind": "train", "step": 3}\n')
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / ".last.x.tmp").mkdir()  # a first save killed mid-write
    (run / ".metrics.jsonl.k3j2.tmp").write_text("")  # an atomic write killed mid-write
    prepare_run_dir(run, resume=False, overwrite=False)
    assert list(run.iterdir()) == []


def test_train_holds_the_run_folder_lock(tmp_path):
    from seisinv.training.config import load_config
    from seisinv.training.trainer import train

    run = tmp_path / "run"
    proc = _start_holder(run)
    try:
        with pytest.raises(LockedError, match=rf"run_dir .*run: in use by PID {proc.pid}"):
            train(load_config("tiny-openfwi", []), run)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]  # the holder's, nothing else
