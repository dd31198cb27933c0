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
    """Samples made by ``seisinv generate`` on the OpenFWI survey (Kaggle's shapes), moved into
    Kaggle's layout: ``train_samples/FlatVel_A/data/data1.npy`` + ``model/model1.npy`` and
    ``train_samples/FlatFault_A/seis2_1_0.npy`` + ``vel2_1_0.npy``, each file name repeated in a
    second family folder, and ``test/<id>.npy`` single samples without velocity."""
    import shutil

    from seisinv.generation.job import GenerateSpec, run_generate

    root = tmp_path_factory.mktemp("gwi")
    generated = root / "generated"
    run_generate(GenerateSpec(survey=OPENFWI, families=("FlatVel_A", "FlatFault_A"), n=8,
                              seed=0, per_file=2), generated, device="cpu",
                 progress=False)
    chunks = sorted((generated / "data").glob("data*.npy"))
    assert len(chunks) == 4
    train = root / "train_samples"
    targets = [("FlatVel_A/data/data1.npy", "FlatVel_A/model/model1.npy"),
               ("CurveVel_A/data/data1.npy", "CurveVel_A/model/model1.npy"),
               ("FlatFault_A/seis2_1_0.npy", "FlatFault_A/vel2_1_0.npy"),
               ("CurveFault_A/seis2_1_0.npy", "CurveFault_A/vel2_1_0.npy")]
    for chunk, (data, model) in zip(chunks, targets, strict=True):
        for target in (train / data, train / model):
            target.parent.mkdir(parents=True, exist_ok=True)
        velocity = generated / "model" / chunk.name.replace("data", "model")
        shutil.copy(chunk, train / data)
        shutil.copy(velocity, train / model)
    (root / "test").mkdir()
    gathers = np.load(chunks[0])
    for sample_id, sample in zip(("000039dca2", "0001026c8a"), gathers, strict=True):
        np.save(root / "test" / f"{sample_id}.npy", sample)
    shutil.rmtree(generated)
    return root


def test_gwi_experiments_are_packaged_and_resolve():
    assert set(GWI) <= set(experiment_names())
    for name in GWI:
        for size in ("tiny", "full"):
            assert load_experiment(name, size).submission == "kaggle-gwi"


@pytest.mark.parametrize(("change", "message"), [
    ({"runs": [{"name": "a", "init_from": "b"}, {"name": "b"}]}, "runs.*init_from 'b'"),
    ({"runs": [{"name": "a"}, {"name": "b", "init_from": "a:worst"}]}, "RUN\\[:best\\|last\\]"),
    ({"runs": [{"name": "a", "member": False}]}, "at least one run must be a member"),
    ({"ensemble": {"method": "hill_climb", "classifier": "noflip",
                   "weights_per_family": True}}, "classifier 'noflip': name a run with member"),
    ({"ensemble": {"method": "mean", "weights_per_family": True}}, "fitted on validation"),
    ({"runs": [{"name": "a", "val_fold": 0}, {"name": "b", "val_fold": 1}],
      "ensemble": {"method": "hill_climb"}}, "same val_fold"),
    ({"ensemble": {"method": "hill_climb"}, "stages": ["folds", "train", "predict", "ensemble",
                                                      "submission"]}, "'validate' stage"),
    ({"predict": {"checkpoint": {"last": -1.0, "best": 0.4}}}, "non-negative"),
    ({"predict": {"checkpoint": "best", "history": 2}}, "history needs a checkpoint blend"),
])
def test_gwi_experiment_settings_are_checked_at_the_door(change, message):
    from seisinv.errors import ConfigError
    from seisinv.experiment import read_experiment, resolve_experiment
    from seisinv.experiment.spec import deep_merge

    data = read_experiment("gwi-4th-place")
    data.pop("sizes")
    data = deep_merge(data, {"ensemble": {"classifier": None, "weights_per_family": False}})
    data = deep_merge(data, change)
    with pytest.raises(ConfigError, match=message):
        resolve_experiment(data)


@pytest.fixture(scope="module")
def finished(kaggle_tree, tmp_path_factory):
    """``finished(name)``: the packaged experiment run once at ``--size tiny`` on the Kaggle tree
    (cached for the module): ``(spec, result, out)``."""
    done = {}

    def run(name):
        if name not in done:
            out = tmp_path_factory.mktemp(name) / "out"
            spec = load_experiment(name, "tiny")
            result = run_experiment(spec, [kaggle_tree / "train_samples"], kaggle_tree / "test",
                                    out, size="tiny", device="cpu", progress=False)
            done[name] = spec, result, out
        return done[name]

    return run


@pytest.mark.slow
@pytest.mark.parametrize("name", GWI)
def test_gwi_experiment_runs_end_to_end_tiny(name, finished):
    from seisinv.inference.submission import read_kaggle_gwi

    spec, result, out = finished(name)
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


def test_gwi_4th_place_postprocessing_rounds_the_submission(finished):
    from seisinv.inference.submission import read_kaggle_gwi

    _, result, _ = finished("gwi-4th-place")
    for velocity in read_kaggle_gwi(result.submission).values():
        assert np.allclose(velocity, np.round(velocity))
        assert velocity.min() >= OPENFWI.vmin and velocity.max() <= OPENFWI.vmax


def _config(out, run):
    import yaml

    return yaml.safe_load((out / "runs" / run / "config.yaml").read_text())


def _plan(folder):
    import json

    return json.loads((folder / "ensemble.json").read_text())


@pytest.mark.slow
def test_gwi_4th_place_blends_last_and_best_and_routes_families_through_its_classifier(finished):
    """The seed-003 ensemble: 'noflip' and 'flip' fine-tune from 'base' (init_from), each model's
    last and best checkpoints predict and blend 0.6 / 0.4 into one member, the per-family weights
    are fitted on validation and the classifier trained inside the experiment names each test
    sample's family."""
    from seisinv.inference.store import PredictionStore

    spec, _, out = finished("gwi-4th-place")
    for branch in ("noflip", "flip"):
        assert _config(out, branch)["init_from"] == f"{out / 'runs' / 'base'}:last"
        for folder in (out / "predictions", out / "validation"):
            plan = _plan(folder / branch)
            assert plan["method"] == "weighted"
            assert plan["members"] == [str(folder / f"{branch}@last-stretch-000"),
                                       str(folder / f"{branch}@best-stretch-000")]
            assert plan["weights"]["*"] == pytest.approx([0.6, 0.4])
    assert _config(out, "classifier")["task"] == "family"
    assert [run.name for run in spec.members] == ["noflip", "flip"]
    assert not (out / "predictions" / "base").exists()
    fitted = _plan(out / "validation" / "ensemble")
    assert fitted["method"] == "weighted" and sum(fitted["weights"]["*"]) == pytest.approx(1.0)
    test = PredictionStore(out / "ensemble")
    assert _plan(out / "ensemble")["weights"] == fitted["weights"]  # fitted once, applied
    families = test.meta["info"]["predicted_families"]
    assert sorted(families) == ["000039dca2", "0001026c8a"]
    assert set(families.values()) <= set(_config(out, "classifier")["model"]["options"]["families"])


@pytest.mark.slow
def test_gwi_sota_xattn_tiny_trains_the_whole_loss_and_hill_climbs(finished):
    spec, _, out = finished("gwi-sota-xattn")
    terms = {t["name"]: t for t in _config(out, "seed0")["loss"]["terms"]}
    assert {n: t["weight"] for n, t in terms.items()} == {"mape": 1.0, "mse": 0.5,
                                                         "smoothness": 0.3, "physics": 0.2}
    assert terms["physics"]["options"]["shots"] == [2]
    fitted = _plan(out / "validation" / "ensemble")
    assert fitted["method"] == "hill_climb" and len(fitted["weights"]["*"]) == 2
    assert _plan(out / "ensemble")["weights"] == fitted["weights"]


@pytest.mark.slow
def test_gwi_vit_generates_transform_maps_and_raises_the_image_size_in_stages(finished):
    import csv

    spec, _, out = finished("gwi-vit")
    with open(out / "generated" / "manifest.csv", newline="") as handle:
        generated = list(csv.DictReader(handle))
    assert generated and {row["family"] for row in generated} == {"transform"}
    folds = dict(line.split(",") for line in (out / "folds.csv").read_text().split()[1:])
    assert all(folds[row["id"]] == "-1" for row in generated)  # pretraining maps never validate
    first, second = _config(out, "size28"), _config(out, "size35")
    assert first["model"]["options"]["image_size"] == 28
    assert second["model"]["options"]["image_size"] == 35
    assert second["init_from"] == f"{out / 'runs' / 'size28'}:last"
    assert [run.name for run in spec.members] == ["size35"]
    assert (out / "predictions" / "size35").is_dir() and not (out / "predictions" / "size28").exists()
    # The pseudo-label round validated its new runs; the earlier validation moved aside.
    assert (out / "validation" / "size35" / "manifest.json").is_file()
    assert (out / "pseudo" / "before-round-1" / "validation" / "size35").is_dir()


@pytest.mark.slow
def test_pseudo_label_round_resumes_after_a_kill_in_its_training(kaggle_tree, tmp_path):
    import json

    spec = load_experiment("gwi-vit", "tiny")
    out = tmp_path / "out"
    calls: list[str] = []

    def kill(stage, run):
        calls.append(stage)
        # The first run of the pseudo-label round's training.
        if stage == "train" and calls.count("train") == len(spec.runs) + 1:
            raise KeyboardInterrupt("killed")

    args = ([kaggle_tree / "train_samples"], kaggle_tree / "test", out)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(spec, *args, size="tiny", device="cpu", progress=False,
                       hooks={"before_run": kill})
    state = json.loads((out / "state.json").read_text())
    assert set(state["runs"]["pseudo_label"]) == {"round-1-labels", "round-1-moved"}
    result = run_experiment(spec, *args, size="tiny", device="cpu", progress=False)
    state = json.loads((out / "state.json").read_text())
    assert "round-1" in state["runs"]["pseudo_label"]
    assert sorted(read_kaggle_gwi_ids(result.submission)) == ["000039dca2", "0001026c8a"]


def read_kaggle_gwi_ids(path):
    from seisinv.inference.submission import read_kaggle_gwi

    return list(read_kaggle_gwi(path))


def test_checkpoint_blend_takes_the_newest_stretches_of_each_kind(tmp_path):
    """``predict.history`` picks each kind's newest stretches that kept one, sharing the kind's
    weight equally; without history the run's own best / last."""
    from seisinv.experiment.members import run_checkpoints
    from seisinv.experiment.spec import PredictStage

    history = tmp_path / "checkpoints" / "history"
    for stretch, kinds in (("000", ("best", "last")), ("001", ("last",)), ("002", ("best", "last"))):
        for kind in kinds:
            (history / f"stretch-{stretch}" / kind).mkdir(parents=True)
    blend = {"last": 0.6, "best": 0.4}
    found = run_checkpoints(tmp_path, PredictStage(checkpoint=blend, history=2))
    assert [(label, path.relative_to(history).as_posix(), round(w, 6)) for label, path, w in found] == [
        ("last-stretch-001", "stretch-001/last", 0.3), ("last-stretch-002", "stretch-002/last", 0.3),
        ("best-stretch-000", "stretch-000/best", 0.2), ("best-stretch-002", "stretch-002/best", 0.2)]
    assert run_checkpoints(tmp_path, PredictStage(checkpoint=blend)) == [
        ("last", tmp_path, 0.6), ("best", tmp_path, 0.4)]
    assert run_checkpoints(tmp_path, PredictStage(checkpoint="last")) == [("last", tmp_path, 1.0)]


@pytest.mark.slow
def test_pseudo_label_round_keeps_pseudo_maps_out_of_the_family_classifier(kaggle_tree, tmp_path):
    """gwi-4th-place plus a pseudo-label round: the velocity runs train on the pool plus the
    pseudo-labelled test maps, the family classifier only on maps whose family is known (a
    pseudo label has no family among its classes, which it would refuse)."""
    import yaml

    from seisinv.experiment import read_experiment, resolve_experiment
    from seisinv.experiment.spec import deep_merge

    data = read_experiment("gwi-4th-place")
    stages = load_experiment("gwi-4th-place", "tiny").stages
    at = stages.index("submission")
    data = deep_merge(data, {"pseudo_label": {"rounds": 1},
                             "stages": [*stages[:at], "pseudo_label", *stages[at:]]})
    spec = resolve_experiment(data, size="tiny")
    out = tmp_path / "out"
    run_experiment(spec, [kaggle_tree / "train_samples"], kaggle_tree / "test", out,
                   size="tiny", device="cpu", progress=False)
    pseudo = str(out / "pseudo" / "round-1")
    trained_on = {name: yaml.safe_load((out / "runs" / name / "config.yaml").read_text())
                  ["data"]["train"] for name in ("noflip", "classifier")}
    assert pseudo in trained_on["noflip"]
    assert pseudo not in trained_on["classifier"]
    assert str(kaggle_tree / "train_samples") in trained_on["classifier"]
