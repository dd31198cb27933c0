"""The challenge workflows end to end through the real CLI, at tiny scale.

- Speed & Structure: a reduced survey with the challenge's conventions (``base: speed-structure``:
  folder per sample, velocity stored (x, z) float64 in km/s) -> generate -> check -> train ->
  predict on unlabelled test folders -> ``submit --format speed-structure`` -> evaluate.
- OpenFWI / Kaggle GWI: single ``<id>.npy`` test files -> predict with flip TTA -> ``submit
  --format kaggle-gwi``.
- The README's pipeline, one command a stage.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from seisinv.cli.main import app
from seisinv.inference.store import PredictionStore

runner = CliRunner()

# Speed & Structure conventions on a 64 (depth) x 40 (horizontal) grid at 10 m; nz != nx so that a
# swapped axis cannot go unnoticed.
SS_SURVEY_YAML = """\
base: speed-structure
name: ss-tiny
nz: 64
nx: 40
dz: 10.0
dx: 10.0
dt: 0.001
nt: 400
source_x: [0.0, 100.0, 200.0, 290.0, 390.0]
source_z: 20.0
receiver_x: [0.0, 30.0, 60.0, 90.0, 120.0, 150.0, 180.0, 210.0, 240.0, 270.0, 300.0, 330.0, 360.0, 390.0]
receiver_z: 10.0
simulation: {coarsen: 1, accuracy: 4}
"""


def cli(*args: str | Path) -> str:
    """Run ``seisinv ARGS`` in-process; fail with its output unless it exits 0. Returns the output
    with whitespace collapsed (rich wraps long lines)."""
    result = runner.invoke(app, [str(a) for a in args])
    if result.exit_code != 0:
        raise AssertionError(f"seisinv {' '.join(map(str, args))} failed:\n{result.output}") from (
            result.exception
        )
    return " ".join(result.output.split())


def strip_labels(labelled: Path, out: Path) -> Path:
    """Copy the sample folders of ``labelled`` without ``vp_model.npy``: a challenge test set."""
    for folder in sorted(p for p in labelled.iterdir() if (p / "vp_model.npy").exists()):
        (out / folder.name).mkdir(parents=True)
        for shot in folder.glob("receiver_data_src_*.npy"):
            shutil.copy(shot, out / folder.name / shot.name)
    return out


@pytest.fixture(scope="module")
def ss(tmp_path_factory) -> dict[str, Path]:
    """The reduced Speed & Structure survey, 6 training samples, 2 labelled and 2 test folders."""
    root = tmp_path_factory.mktemp("ss")
    survey = root / "ss-tiny.yaml"
    survey.write_text(SS_SURVEY_YAML)
    common = ["--survey", survey, "--families", "flat,curved", "--device", "cpu"]
    cli("generate", *common, "--n", 6, "--out", root / "train")
    cli("generate", *common, "--n", 2, "--seed", 1, "--out", root / "labelled")
    test = strip_labels(root / "labelled", root / "test")
    return {"root": root, "survey": survey, "train": root / "train",
            "labelled": root / "labelled", "test": test}


@pytest.fixture(scope="module")
def openfwi(tmp_path_factory) -> dict[str, Path]:
    """8 synthetic OpenFWI samples, a 2-sample labelled test set, and a tiny-openfwi run on them
    trained exactly as the README says (all data synthetic, no data.val)."""
    root = tmp_path_factory.mktemp("openfwi")
    common = ["--survey", "openfwi", "--families", "flat,curved,fault", "--device", "cpu"]
    cli("generate", *common, "--n", 8, "--out", root / "synth")
    cli("generate", *common, "--n", 2, "--seed", 1, "--out", root / "test")
    assert "no problems found" in cli("check", root / "synth")
    output = cli("train", "tiny-openfwi", "--set", f"data.train=[{root / 'synth'}]",
                 "--set", "epochs=1", "--out", root / "runs" / "tiny")
    return {"root": root, "synth": root / "synth", "test": root / "test",
            "run": root / "runs" / "tiny", "train_output": output}


def test_speed_structure_workflow(ss, tmp_path):
    nz, nx = 64, 40
    sample = ss["train"] / "gen-s0-0000000"
    on_disk = np.load(sample / "vp_model.npy")
    assert on_disk.shape == (nx, nz) and on_disk.dtype == np.float64
    # Sample 0 is 'flat' (families cycle flat, curved): horizontal layers, so on disk every row
    # (one x position) holds the same depth profile.
    np.testing.assert_array_equal(on_disk, np.broadcast_to(on_disk[:1], on_disk.shape))
    assert np.ptp(on_disk[0]) > 0
    assert sorted(p.name for p in sample.glob("receiver_data_src_*.npy")) == [
        f"receiver_data_src_{s}.npy" for s in ("1", "150", "225", "300", "75")
    ]
    assert "no problems found" in cli("check", ss["train"])
    assert "no problems found" in cli("check", ss["test"], "--survey", ss["survey"])

    run = tmp_path / "run"
    cli("train", "tiny-openfwi", "--set", f"data.train=[{ss['train']}]",
        "--set", f"data.survey={ss['survey']}", "--set", "epochs=1", "--set", "batch_size=4",
        "--set", "data.transforms=[{name: resample, length: 128}, {name: pad_receivers, to: 16}, "
        "{name: zscore}]",
        "--set", "loss.terms=[{name: mape}]", "--set", "checkpoint.best_metric=mape",
        # A one-step run inside tiny-openfwi's 10 warmup steps would train at lr 0.
        "--set", "schedule.warmup_steps=0", "--out", run)

    pred = tmp_path / "pred"
    cli("predict", "--run", run, "--data", ss["test"], "--out", pred)
    store = PredictionStore(pred)
    test_ids = sorted(p.name for p in ss["test"].iterdir())
    assert sorted(store.ids()) == test_ids

    submission = tmp_path / "submission.npz"
    output = cli("submit", pred, "--format", "speed-structure", "--out", submission,
                 "--ids-from", ss["test"])
    assert "will not score" in output          # a reduced grid is valid but not the challenge's
    assert all(i.compress_type == zipfile.ZIP_STORED for i in zipfile.ZipFile(submission).infolist())
    with np.load(submission, allow_pickle=False) as npz:
        assert sorted(npz.files) == test_ids
        for sample_id in test_ids:
            value = npz[sample_id]
            assert value.shape == (nx, nz) and value.dtype == np.float64
            depth_first = store.read(sample_id)
            assert depth_first.shape == (nz, nx)
            np.testing.assert_array_equal(value, depth_first.T.astype(np.float64))
            assert 1.5 <= value.min() and value.max() <= 4.5          # km/s

    metrics = tmp_path / "metrics.json"
    cli("evaluate", pred, "--truth", ss["labelled"], "--json", metrics)
    (entry,) = json.loads(metrics.read_text())
    assert entry["overall"]["n"] == 2 and np.isfinite(entry["overall"]["mape"])


def test_kaggle_gwi_workflow_with_flip_tta(openfwi, tmp_path):
    test = tmp_path / "gwi_test"
    test.mkdir()
    gathers = np.load(openfwi["test"] / "data" / "data0.npy")
    ids = ["a1b2c3", "d4e5f6"]
    for sample_id, sample in zip(ids, gathers, strict=True):
        np.save(test / f"{sample_id}.npy", sample)
    assert "no problems found" in cli("check", test)

    pred = tmp_path / "pred"
    cli("predict", "--run", openfwi["run"], "--data", test, "--out", pred, "--tta", "flip")
    store = PredictionStore(pred)
    assert json.loads((pred / "manifest.json").read_text())["info"]["tta"] == ["flip"]
    # A rerun without --tta must not report the flip-averaged maps as its own.
    rerun = runner.invoke(app, ["predict", "--run", str(openfwi["run"]), "--data", str(test),
                                "--out", str(pred)])
    assert rerun.exit_code != 0 and 'tta ["flip"] (now [])' in str(rerun.exception)

    csv_path = tmp_path / "submission.csv"
    output = cli("submit", pred, "--format", "kaggle-gwi", "--out", csv_path, "--ids-from", test)
    assert "will not score" not in output
    with open(csv_path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["oid_ypos"] + [f"x_{c}" for c in range(1, 70, 2)]
    assert [r[0] for r in rows[1:]] == [f"{i}_y_{row}" for i in sorted(ids) for row in range(70)]
    for sample_id in ids:
        values = np.array([[float(v) for v in r[1:]] for r in rows[1:] if r[0].startswith(sample_id)])
        np.testing.assert_allclose(values, store.read(sample_id)[:, 1::2], rtol=1e-6)


def test_kaggle_gwi_real_test_sample(openfwi, shared_data, tmp_path):
    test = tmp_path / "gwi_test"
    test.mkdir()
    shutil.copy(shared_data / "gwi_test_000039dca2.npy", test / "000039dca2.npy")
    pred = tmp_path / "pred"
    cli("predict", "--run", openfwi["run"], "--data", test, "--out", pred, "--tta", "flip")
    csv_path = tmp_path / "submission.csv"
    cli("submit", pred, "--format", "kaggle-gwi", "--out", csv_path, "--ids-from", test)
    with open(csv_path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 1 + 70 and len(rows[0]) == 1 + 35
    assert rows[1][0] == "000039dca2_y_0" and rows[-1][0] == "000039dca2_y_69"


def test_readme_pipeline(openfwi, tmp_path):
    """README: generate -> check -> train (fixture) -> predict -> evaluate -> qc -> fwi ->
    ensemble -> submit -> report, with the README's flags at tiny sizes."""
    test, run = openfwi["test"], openfwi["run"]
    pred, fwi, ens = tmp_path / "pred", tmp_path / "fwi", tmp_path / "ens"
    # An all-synthetic pool without data.val still validates: synthetic samples are dealt into
    # folds when nothing else could validate.
    assert "val MAE" in openfwi["train_output"]
    assert (run / "checkpoints" / "best").is_dir()

    cli("predict", "--run", run, "--data", test, "--out", pred, "--tta", "flip")
    assert "MAE" in cli("evaluate", pred, "--truth", test)
    cli("qc", pred, "--data", test)
    assert (pred / "qc.json").is_file()
    cli("fwi", "--data", test, "--survey", "openfwi", "--init", pred, "--iters", 1,
        "--gauss-newton", 0, "--out", fwi, "--no-progress")  # no 25-gradient steps for flat
    cli("ensemble", pred, fwi, "--method", "mean", "--out", ens)
    assert sorted(PredictionStore(ens).ids()) == sorted(PredictionStore(pred).ids())
    cli("submit", ens, "--format", "kaggle-gwi", "--out", tmp_path / "submission.csv",
        "--ids-from", test)
    cli("report", run)
    assert (run / "report" / "index.html").is_file()


def test_training_without_validation_samples_says_so_and_keeps_last(openfwi, tmp_path):
    """Two synthetic samples, five folds: fold 0 gets none; the run trains, keeps `last`, and
    says how to validate; predict falls back to `last`."""
    run = tmp_path / "run"
    output = cli("train", "tiny-openfwi", "--set", f"data.train=[{openfwi['test']}]",
                 "--set", "epochs=1", "--out", run)
    assert "no validation: validation fold 0 of 5 got no samples" in output
    assert "set data.val=[DIR] to validate" in output
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["history", "last"]
    cli("predict", "--run", run, "--data", openfwi["test"], "--out", tmp_path / "pred")
    assert len(PredictionStore(tmp_path / "pred").ids()) == 2


def test_cli_errors_print_brackets_literally(tmp_path, monkeypatch, capsys):
    """A SeisinvError naming `data.train=[...]` must not lose the brackets to rich markup."""
    from seisinv.cli.main import main

    monkeypatch.setattr(sys, "argv", ["seisinv", "train", "tiny-openfwi", "--out", str(tmp_path / "r")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    assert "e.g. data.train=[path/to/dataset]" in capsys.readouterr().err
