"""Issue 14, command by command: nothing stale (provenance), nothing mixed (locks), nothing lost
(disk full), no output over an input, one line for ordinary mistakes."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from seisinv.cli.main import app, flag_message
from seisinv.data.writers import write_stacked
from seisinv.errors import ConfigError, DataError, SeisinvError
from seisinv.fwi import FwiConfig, run_fwi
from seisinv.inference.predict import run_predict
from seisinv.inference.store import PredictionStore
from seisinv.io import save_npy
from seisinv.outdir import LockedError, OutputError
from seisinv.survey import OPENFWI

FWI = OPENFWI.replace(name="small-fwi", nz=8, nx=10, nt=30, source_x=(0.0, 90.0),
                      receiver_x=tuple(10.0 * i for i in range(10)))
runner = CliRunner()


class ToyRun:
    """A LoadedRun stand-in: predicts a constant map; its checkpoint is a folder with a
    manifest of checksums like a real one."""

    which = "ema"
    survey = FWI

    def __init__(self, checkpoint: Path, value: float = 2500.0, sha: str = "a" * 64):
        checkpoint.mkdir(parents=True, exist_ok=True)
        (checkpoint / "manifest.json").write_text(json.dumps(
            {"files": {"model.safetensors": {"sha256": sha, "bytes": 1}}}))
        self.checkpoint, self.value = checkpoint, value

    def predict(self, gathers):
        return np.full((len(gathers), FWI.nz, FWI.nx), self.value, np.float32)


def _dataset(root: Path, n: int = 3, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    gathers = rng.standard_normal((n, *FWI.gather_shape)).astype(np.float32)
    velocity = np.full((n, FWI.nz, FWI.nx), 2000.0 + 100 * seed, np.float32)
    write_stacked(root / "data1.npy", gathers, velocity, FWI)
    return root


# ---- predict ---------------------------------------------------------------------------------
def test_predict_refuses_a_directory_made_from_other_data_with_the_same_ids(tmp_path):
    run = ToyRun(tmp_path / "ckpt")
    a, b = _dataset(tmp_path / "a"), _dataset(tmp_path / "b", seed=1)
    out = tmp_path / "P"
    assert run_predict(run, a, out, progress=False) == (3, 3)
    assert run_predict(run, a, out, progress=False) == (0, 3)  # same data: resumes
    with pytest.raises(OutputError, match=r"data\.paths .* \(now .*b\"\]\)"):
        run_predict(run, b, out, progress=False)
    assert run_predict(run, b, out, overwrite=True, progress=False) == (3, 3)


def test_predict_refuses_to_mix_two_checkpoints_with_the_same_path(tmp_path):
    """Retrained into the same run folder: same path, same step, other checksums."""
    data = _dataset(tmp_path / "a")
    out = tmp_path / "P"
    run_predict(ToyRun(tmp_path / "run" / "best"), data, out, progress=False)
    retrained = ToyRun(tmp_path / "run" / "best", value=3000.0, sha="b" * 64)
    with pytest.raises(OutputError, match=r"checkpoint \(files changed\)"):
        run_predict(retrained, data, out, progress=False)
    assert np.all(PredictionStore(out).read("data1_0") == 2500.0)


def test_predict_never_writes_into_its_input_or_a_foreign_folder(tmp_path):
    run = ToyRun(tmp_path / "ckpt")
    data = _dataset(tmp_path / "test")
    before = sorted(os.listdir(data))
    with pytest.raises(OutputError, match="is the input"):
        run_predict(run, data, data, progress=False)
    with pytest.raises(OutputError, match="inside the input"):
        run_predict(run, data, data / "pred", progress=False)
    assert sorted(os.listdir(data)) == before
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("x")
    with pytest.raises(OutputError, match="not empty and not an output"):
        run_predict(run, data, foreign, progress=False)
    assert os.listdir(foreign) == ["todo.txt"]


def _older_prediction(out: Path, *extra: str) -> None:
    """A prediction folder as a seisinv without provenance records left it (plus ``extra``)."""
    PredictionStore(out, FWI, source="old").write("data1_0", np.full(FWI.velocity_shape, 9.0))
    for name in extra:
        (out / name).write_text("mine")


def test_overwrite_starts_again_in_an_older_prediction_folder(tmp_path):
    """A folder made before provenance.json existed is refused (the message says how to go
    on); overwrite=True clears what predict writes and starts again."""
    run = ToyRun(tmp_path / "ckpt")
    data = _dataset(tmp_path / "a")
    out = tmp_path / "P"
    _older_prediction(out)
    with pytest.raises(OutputError, match="before provenance records") as info:
        run_predict(run, data, out, progress=False)
    assert "pass --overwrite to start again" in flag_message(info.value)
    assert "\n" not in flag_message(info.value)
    assert run_predict(run, data, out, overwrite=True, progress=False) == (3, 3)
    assert np.all(PredictionStore(out).read("data1_0") == 2500.0)
    assert sorted(os.listdir(out)) == ["manifest.json", "provenance.json", "velocity"]


def test_overwrite_never_clears_an_older_output_holding_other_files(tmp_path):
    run = ToyRun(tmp_path / "ckpt")
    data = _dataset(tmp_path / "a")
    out = tmp_path / "P"
    _older_prediction(out, "notes.txt")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(OutputError, match=r"does not write \(notes\.txt\)"):
        run_predict(run, data, out, overwrite=True, progress=False)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    # Another command's older output is not predict's to clear either.
    fwi_out = tmp_path / "F"
    _older_prediction(fwi_out, "fwi_config.json")
    with pytest.raises(OutputError, match="does not write"):
        run_predict(run, data, fwi_out, overwrite=True, progress=False)


def test_fwi_overwrite_starts_again_in_its_older_output(tmp_path):
    data = _dataset(tmp_path / "d", n=1)
    out = tmp_path / "F"
    _older_prediction(out, "fwi_config.json", "convergence.png")
    (out / "fwi").mkdir()
    (out / "fwi" / "data1_0.json").write_text("{}")
    common = dict(forward=_toy_forward, progress=False)
    with pytest.raises(OutputError, match="pass overwrite=True"):
        run_fwi(data, FWI, "gradient", out, FwiConfig(iters=1), **common)
    summary = run_fwi(data, FWI, "gradient", out, FwiConfig(iters=1), overwrite=True, **common)
    assert summary.inverted == ["data1_0"]
    assert json.loads((out / "fwi_config.json").read_text())["config"]["iters"] == 1


def test_predict_disk_full_is_one_line_and_resumes(tmp_path, monkeypatch):
    run = ToyRun(tmp_path / "ckpt")
    data = _dataset(tmp_path / "a")
    out = tmp_path / "P"
    real = PredictionStore.write
    calls = {"n": 0}

    def fills_up(self, sample_id, velocity, spread=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, sample_id, velocity, spread)

    monkeypatch.setattr(PredictionStore, "write", fills_up)
    with pytest.raises(OutputError, match=r"disk full while writing .*P; 1 of 3 samples are "
                                          "complete and will not be redone"):
        run_predict(run, data, out, batch=1, progress=False)
    monkeypatch.setattr(PredictionStore, "write", real)
    assert run_predict(run, data, out, progress=False) == (2, 3)


HOLDER = """
import sys, time
from seisinv.outdir import lock_output
with lock_output(sys.argv[1], "seisinv predict"):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_predict_into_a_busy_folder_is_refused_naming_the_pid(tmp_path):
    run = ToyRun(tmp_path / "ckpt")
    data = _dataset(tmp_path / "a")
    out = tmp_path / "P"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE,
                            env=env, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError, match=f"in use by PID {proc.pid}"):
            run_predict(run, data, out, progress=False)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert run_predict(run, data, out, progress=False) == (3, 3)  # the stale lock is taken over


# ---- fwi -------------------------------------------------------------------------------------
def _toy_forward(velocity: torch.Tensor, shots) -> torch.Tensor:
    """A differentiable stand-in for the physics: every trace is the map's mean slowness."""
    b = velocity.shape[0]
    n_shots = FWI.n_shots if shots is None else len(shots)
    level = (1.0 / velocity).mean(dim=(1, 2))
    return level[:, None, None, None].expand(b, n_shots, FWI.nt, FWI.n_receivers) * 1e3


def test_fwi_refuses_other_settings_and_keeps_its_config_record(tmp_path):
    data = _dataset(tmp_path / "d", n=2)
    out = tmp_path / "F"
    common = dict(forward=_toy_forward, progress=False)
    run_fwi(data, FWI, "gradient", out, FwiConfig(iters=1, batch_size=2), **common)
    recorded = (out / "fwi_config.json").read_text()
    assert json.loads(recorded)["config"]["iters"] == 1
    with pytest.raises(OutputError, match=r"config\.iters 1 \(now 2\)"):
        run_fwi(data, FWI, "gradient", out, FwiConfig(iters=2, batch_size=2), **common)
    assert (out / "fwi_config.json").read_text() == recorded
    again = run_fwi(data, FWI, "gradient", out, FwiConfig(iters=1, batch_size=2), **common)
    assert again.inverted == [] and len(again.skipped) == 2
    redone = run_fwi(data, FWI, "gradient", out, FwiConfig(iters=2, batch_size=2),
                     overwrite=True, **common)
    assert len(redone.inverted) == 2
    assert json.loads((out / "fwi_config.json").read_text())["config"]["iters"] == 2


def test_fwi_negative_limit_is_refused(tmp_path):
    data = _dataset(tmp_path / "d", n=2)
    with pytest.raises(SeisinvError, match="limit -2: must be a positive number") as info:
        run_fwi(data, FWI, "gradient", tmp_path / "F", FwiConfig(iters=1), limit=-2,
                forward=_toy_forward, progress=False)
    assert flag_message(info.value).startswith("--limit -2")
    assert not (tmp_path / "F").exists()


@pytest.mark.parametrize("bands", ["15,8", "0,8", "8,0,15", "-1"])
def test_fwi_cli_refuses_bands_out_of_order(tmp_path, bands):
    data = _dataset(tmp_path / "d", n=1)
    result = runner.invoke(app, ["fwi", "--data", str(data), "--survey", "openfwi", "--init",
                                 "gradient", "--out", str(tmp_path / "F"), "--bands", bands])
    assert result.exit_code != 0 and "--bands" in str(result.exception)
    assert not (tmp_path / "F").exists()


# ---- simulate / generate -----------------------------------------------------------------------
def test_simulate_onto_its_own_input_is_refused_and_the_maps_survive(tmp_path):
    from seisinv.generation import run_simulate

    maps = tmp_path / "models.npy"
    save_npy(maps, np.full((2, 1, FWI.nz, FWI.nx), 2500.0, np.float32))
    before = maps.read_bytes()
    with pytest.raises(OutputError, match="is the input"):
        run_simulate(maps, FWI, maps, device="cpu", progress=False)
    assert maps.read_bytes() == before


@pytest.mark.parametrize("value, start", [
    (250000.0, "velocity: range 2.5e+05..2.5e+05 m/s outside the survey's 1500..4500 "),
    (2.5, "velocity: looks like km/s (values 2.5..2.5, median 2.5); survey 'small-fwi'"),
    (0.0, "velocity: must be positive, found minimum 0"),
])
def test_simulate_velocity_errors_say_velocity_once(value, start):
    """The physics names its argument once ("velocity: range ..."), not "velocity: velocity
    range ..."; a file keeps the full problem after its name."""
    from seisinv.physics import simulate

    with pytest.raises(DataError) as info:
        simulate(np.full((1, FWI.nz, FWI.nx), value, np.float32), FWI, device="cpu")
    assert str(info.value).startswith(start), str(info.value)
    assert "velocity: velocity" not in str(info.value)


def test_simulate_names_the_file_of_a_map_in_the_wrong_scale(tmp_path):
    from seisinv.generation import run_simulate

    maps = tmp_path / "models.npy"
    save_npy(maps, np.full((2, 1, FWI.nz, FWI.nx), 250000.0, np.float32))
    with pytest.raises(DataError) as info:
        run_simulate(maps, FWI, tmp_path / "g.npy", device="cpu", progress=False)
    assert str(info.value).startswith(f"{maps}: velocity range 2.5e+05..2.5e+05 m/s outside")
    assert not (tmp_path / "g.npy").exists()


def test_simulate_older_npy_output_is_never_overwritten(tmp_path):
    """A complete .npy from a simulate older than provenance records has no marker telling it
    from a user's file: refused even with overwrite=True, and left as it was."""
    from seisinv.generation import run_simulate

    maps = tmp_path / "models.npy"
    save_npy(maps, np.full((2, 1, FWI.nz, FWI.nx), 2500.0, np.float32))
    older = tmp_path / "g.npy"
    save_npy(older, np.zeros((2, *FWI.gather_shape), np.float32))
    before = older.read_bytes()
    with pytest.raises(OutputError, match=r"g\.npy: exists and was not written by 'seisinv "
                       r"simulate'; choose another output"):
        run_simulate(maps, FWI, older, device="cpu", progress=False, overwrite=True)
    assert older.read_bytes() == before


def test_simulate_full_disk_leaves_no_full_size_partial(tmp_path, monkeypatch):
    from seisinv.generation import run_simulate

    maps = tmp_path / "models.npy"
    save_npy(maps, np.full((2, 1, FWI.nz, FWI.nx), 2500.0, np.float32))

    def no_space(fd, offset, size):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    with pytest.raises(OutputError, match="disk full while writing .*g.npy; 0 of 2 samples"):
        run_simulate(maps, FWI, tmp_path / "g.npy", device="cpu", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models.npy"]


def test_generate_full_disk_before_a_chunk_is_one_line_and_no_temporary_is_left(
        tmp_path, monkeypatch):
    from seisinv.generation import GenerateSpec, run_generate

    def no_space(fd, offset, size):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    spec = GenerateSpec(FWI, ("flat",), n=2, per_file=1)
    with pytest.raises(OutputError, match="disk full while writing .*; 0 of 2 samples"):
        run_generate(spec, tmp_path / "g", device="cpu", progress=False)
    leftovers = [p for p in (tmp_path / "g").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_generate_refuses_a_second_copy_of_the_same_shard(tmp_path):
    from seisinv.generation import GenerateSpec, run_generate
    from seisinv.outdir import lock_output

    spec = GenerateSpec(FWI, ("flat",), n=2, per_file=1)
    out = tmp_path / "g"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    holder = HOLDER.replace('lock_output(sys.argv[1], "seisinv predict")',
                            'lock_output(sys.argv[1], "seisinv generate", '
                            'name="shard1of1-rank0of1")')
    proc = subprocess.Popen([sys.executable, "-c", holder, str(out)], stdout=subprocess.PIPE,
                            env=env, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError, match=f"PID {proc.pid}"):
            run_generate(spec, out, device="cpu", progress=False)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with lock_output(out, "other shard", name="shard2of2-rank0of1"):  # other shards may run
        assert run_generate(spec, out, device="cpu", progress=False).written == 2


def test_refused_generate_leaves_no_stub_in_a_foreign_folder(tmp_path):
    from seisinv.generation import GenerateSpec, run_generate

    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("x")
    with pytest.raises(SeisinvError, match="not empty"):
        run_generate(GenerateSpec(FWI, ("flat",), n=1), out, device="cpu", progress=False)
    assert os.listdir(out) == ["thesis.tex"]


# ---- submit and the CLI's one-liners -----------------------------------------------------------
@pytest.fixture
def kaggle_store(tmp_path):
    store = PredictionStore(tmp_path / "pred", OPENFWI)
    store.write("abc", np.full(OPENFWI.velocity_shape, 2500.0, np.float32))
    return tmp_path / "pred"


def test_submit_one_liners(tmp_path, kaggle_store):
    def submit(out, pred=kaggle_store):
        return runner.invoke(app, ["submit", str(pred), "--format", "kaggle-gwi", "--out",
                                   str(out)])

    folder = tmp_path / "a_folder"
    folder.mkdir()
    result = submit(folder)
    assert result.exit_code != 0 and str(result.exception).startswith(f"--out {folder}: is a folder")
    result = submit("/proc/x/sub.csv")
    assert result.exit_code != 0 and "--out /proc/x/sub.csv: cannot write" in str(result.exception)
    PredictionStore(tmp_path / "empty", OPENFWI)
    result = submit(tmp_path / "s.csv", tmp_path / "empty")
    assert result.exit_code != 0 and "empty submission" in str(result.exception)
    assert not (tmp_path / "s.csv").exists()
    assert submit(tmp_path / "ok.csv").exit_code == 0


def test_main_prints_os_errors_as_one_line():
    full = OSError(errno.ENOSPC, "No space left on device", "/data/x.npy")
    assert flag_message(full).startswith("disk full while writing /data/x.npy")
    denied = PermissionError(errno.EACCES, "Permission denied", "/root/x")
    assert flag_message(denied) == "/root/x: Permission denied"
    assert flag_message(OutputError("out /x: busy")) == "--out /x: busy"


def test_library_messages_name_python_arguments_and_the_cli_shows_flags():
    """Library errors never spell CLI flags; the CLI shows the leading argument and
    ``pass NAME=True`` advice as flags (with the few flags named otherwise)."""
    from seisinv.generation.pipeline import parse_workers
    from seisinv.training.config import parse_override

    with pytest.raises(SeisinvError) as info:
        parse_workers("-1")
    assert str(info.value) == "workers -1: must be at least 0"
    assert flag_message(info.value) == "--workers -1: must be at least 0"
    with pytest.raises(ConfigError) as info:
        parse_override("optimizer.lr")
    assert str(info.value).startswith("overrides 'optimizer.lr': expected key=value")
    assert flag_message(info.value).startswith("--set 'optimizer.lr': expected key=value")
    resume = ConfigError("run_dir /r: holds a run; pass resume=True to continue", "run_dir")
    assert flag_message(resume) == "--out /r: holds a run; pass --resume to continue"
    assert flag_message(SeisinvError("outfile: pass overwrite=True")) == "outfile: pass --overwrite"


@pytest.mark.parametrize("out", ["/proc/x", "FILE"])
def test_fwi_cli_out_that_cannot_be_a_folder_is_one_line(tmp_path, out):
    from seisinv.io import write_yaml

    data = _dataset(tmp_path / "d", n=1)
    write_yaml(tmp_path / "survey.yaml", FWI.to_dict())
    if out == "FILE":
        out = tmp_path / "a_file"
        out.write_text("x")
    result = runner.invoke(app, ["fwi", "--data", str(data), "--survey",
                                 str(tmp_path / "survey.yaml"), "--init", "gradient", "--out",
                                 str(out), "--iters", "1"])
    assert result.exit_code != 0 and isinstance(result.exception, OutputError)
    assert f"out {out}:" in str(result.exception)


def test_a_first_predict_that_fails_before_any_result_leaves_no_stub(tmp_path):
    class Broken(ToyRun):
        def predict(self, gathers):
            raise SeisinvError("model exploded")

    data = _dataset(tmp_path / "a")
    with pytest.raises(SeisinvError, match="exploded"):
        run_predict(Broken(tmp_path / "ckpt"), data, tmp_path / "P", progress=False)
    assert not (tmp_path / "P").exists()


def test_fwi_bad_init_leaves_no_stub(tmp_path):
    data = _dataset(tmp_path / "d", n=1)
    with pytest.raises(SeisinvError, match="^init 'nowhere'") as info:
        run_fwi(data, FWI, "nowhere", tmp_path / "F", FwiConfig(iters=1), progress=False)
    assert flag_message(info.value).startswith("--init 'nowhere'")
    assert not (tmp_path / "F").exists()


def test_disk_full_wrapped_by_other_libraries_is_one_line(monkeypatch, capsys):
    """safetensors reports ENOSPC in its own exception type; numpy's short write has no errno."""
    import seisinv.cli.main as cli_main
    from seisinv.io import is_disk_full

    def full():
        raise RuntimeError("Error while serializing: I/O error: No space left on device")

    monkeypatch.setattr(cli_main, "app", full)
    with pytest.raises(SystemExit) as info:
        cli_main.main()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "disk full" in err and "Traceback" not in err
    assert is_disk_full(OSError("4900 requested and 4064 written"))
    assert not is_disk_full(OSError("something else"))


def test_library_argument_names_become_flags_in_the_cli(tmp_path):
    result = runner.invoke(app, ["generate", "--n", "0", "--out", str(tmp_path / "g")])
    assert result.exit_code != 0
    assert flag_message(result.exception) == "--n 0: must be at least 1"
    result = runner.invoke(app, ["generate", "--per-file", "0", "--n", "1", "--out",
                                 str(tmp_path / "g")])
    assert flag_message(result.exception) == "--per-file 0: must be at least 1"
    assert not (tmp_path / "g").exists()


def test_progress_is_the_one_switch_name():
    import inspect

    from seisinv.generation import run_generate, run_simulate

    for function in (run_generate, run_simulate, run_fwi, run_predict):
        parameters = inspect.signature(function).parameters
        assert "progress" in parameters and "show_progress" not in parameters, function
