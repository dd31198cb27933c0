"""Packaged Kaggle GWI experiments end to end at ``--size tiny`` on a tree laid out like Kaggle's
training data (family folders with repeated file names, both file-name styles) and test folder."""

from __future__ import annotations

import numpy as np
import pytest

from seisinv.experiment import experiment_names, load_experiment, run_experiment
from seisinv.survey import OPENFWI

GWI = ("gwi-convnext-unet", "gwi-4th-place", "gwi-sota-xattn", "gwi-vit")


@pytest.fixture(scope="module")
def kaggle_tree(tmp_path_factory):
    """``train_samples/FlatVel_A/data/data1.npy`` + ``model/model1.npy`` and
    ``train_samples/FlatFault_A/seis2_1_0.npy`` + ``vel2_1_0.npy`` (file names repeated across
    families), ``test/<id>.npy`` single samples; OpenFWI shapes, random gathers."""
    root = tmp_path_factory.mktemp("gwi")
    rng = np.random.default_rng(0)
    survey = OPENFWI
    n = 2

    def batch():
        gathers = (rng.standard_normal((n, *survey.gather_shape)) * 1e-2).astype(np.float32)
        depth = np.linspace(1600.0, 4400.0, survey.disk_velocity_shape[0])[:, None]
        velocity = np.broadcast_to(depth, survey.disk_velocity_shape) \
            + rng.uniform(0, 50, (n, 1, *survey.disk_velocity_shape))
        return gathers, velocity.astype(np.float32)

    train = root / "train_samples"
    for family in ("FlatVel_A", "CurveVel_A"):
        (train / family / "data").mkdir(parents=True)
        (train / family / "model").mkdir(parents=True)
        gathers, velocity = batch()
        np.save(train / family / "data" / "data1.npy", gathers)
        np.save(train / family / "model" / "model1.npy", velocity)
    for family in ("FlatFault_A", "CurveFault_A"):
        (train / family).mkdir(parents=True)
        gathers, velocity = batch()
        np.save(train / family / "seis2_1_0.npy", gathers)
        np.save(train / family / "vel2_1_0.npy", velocity)
    (root / "test").mkdir()
    for sample_id in ("000039dca2", "0001026c8a"):
        np.save(root / "test" / f"{sample_id}.npy",
                (rng.standard_normal(survey.gather_shape) * 1e-2).astype(np.float32))
    return root


def test_gwi_experiments_are_packaged_and_resolve():
    assert set(GWI) <= set(experiment_names())
    for name in GWI:
        for size in ("tiny", "full"):
            assert load_experiment(name, size).submission == "kaggle-gwi"


@pytest.mark.slow
@pytest.mark.parametrize("name", GWI)
def test_gwi_experiment_runs_end_to_end_tiny(name, kaggle_tree, tmp_path):
    from seisinv.inference.submission import read_kaggle_gwi

    out = tmp_path / "out"
    spec = load_experiment(name, "tiny")
    result = run_experiment(spec, [kaggle_tree / "train_samples"], kaggle_tree / "test", out,
                            size="tiny", device="cpu", progress=False)
    maps = read_kaggle_gwi(result.submission)
    assert sorted(maps) == ["000039dca2", "0001026c8a"]
    for run in spec.runs:
        assert (out / "runs" / run.name / "checkpoints" / "last").is_dir()
    if spec.pseudo_label is not None and "pseudo_label" in spec.stages:
        labelled = out / "pseudo" / "round-1"
        assert (labelled / "pseudo_label.json").is_file()
        folds = dict(line.split(",") for line in (out / "folds.csv").read_text().split()[1:])
        pseudo = [i for i in folds if i not in _train_ids(out)]
        assert pseudo and all(folds[i] == "-1" for i in pseudo)  # training only, never validated
        assert (out / "pseudo" / "before-round-1" / "ensemble").is_dir()
        for run in spec.runs:  # trained again, on the pool plus the pseudo labels
            assert (out / "runs" / run.name / "checkpoints" / "last").is_dir()


def _train_ids(out):
    import json

    state = json.loads((out / "state.json").read_text())
    n = state["runs"]["pseudo_label"]["round-1-labels"]["n"]
    folds = [line.split(",")[0] for line in (out / "folds.csv").read_text().split()[1:]]
    return set(folds[:-n])


def test_gwi_4th_place_postprocessing_rounds_the_submission(kaggle_tree, tmp_path):
    from seisinv.inference.submission import read_kaggle_gwi

    spec = load_experiment("gwi-4th-place", "tiny")
    result = run_experiment(spec, [kaggle_tree / "train_samples"], kaggle_tree / "test",
                            tmp_path / "out", size="tiny", device="cpu", progress=False)
    for velocity in read_kaggle_gwi(result.submission).values():
        assert np.allclose(velocity, np.round(velocity))
        assert velocity.min() >= OPENFWI.vmin and velocity.max() <= OPENFWI.vmax
