"""``seisinv experiment``: spec loading, every packaged experiment end to end at ``--size tiny``,
resume after a kill, refusal of changed settings."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from seisinv.errors import ConfigError, SeisinvError
from seisinv.experiment import (
    experiment_names,
    load_experiment,
    read_experiment,
    resolve_experiment,
    run_experiment,
)
from seisinv.survey import SPEED_STRUCTURE

PACKAGED = ("ss-caformer-unet", "ss-eva02-fusion", "ss-eva-attention")


@pytest.fixture(scope="module")
def ss_data(tmp_path_factory):
    """Five Speed & Structure training folders (with vp_model.npy) and one test folder (without),
    at the challenge's real shapes: random gathers, depth-increasing velocities."""
    from seisinv.data.writers import write_sample_folder

    root = tmp_path_factory.mktemp("ss")
    rng = np.random.default_rng(0)
    survey = SPEED_STRUCTURE
    depth = np.linspace(survey.vmin + 0.2, survey.vmax - 0.2, survey.nz)[:, None]
    for i in range(5):
        velocity = (depth + rng.uniform(0, 0.1, survey.velocity_shape)).astype(np.float32)
        gathers = (rng.standard_normal(survey.gather_shape) * 1e-3).astype(np.float32)
        write_sample_folder(root / "train", f"s{i:03d}", gathers, velocity, survey)
    gathers = (rng.standard_normal(survey.gather_shape) * 1e-3).astype(np.float32)
    write_sample_folder(root / "test", "t000", gathers, None, survey)
    return root


# ---- spec -------------------------------------------------------------------------------
def test_packaged_experiments_are_listed_and_resolve_at_both_sizes():
    assert set(PACKAGED) <= set(experiment_names())
    full = load_experiment("ss-eva02-fusion", "full")
    assert [len([r for r in full.runs if r.family == f]) for f in ("base6", "base8", "tiny8")] \
        == [10, 6, 6]
    assert len(load_experiment("ss-eva-attention", "full").runs) == 15
    caformer = load_experiment("ss-caformer-unet", "full")
    assert [(r.seed, r.val_fold) for r in caformer.runs] == [(43, 1), (44, 2), (45, 3)]
    assert caformer.folds.k == 20 and caformer.generate.options == {"flips": False}
    assert load_experiment("ss-caformer-unet", "tiny").folds.k == 4


def test_unknown_keys_and_bad_runs_are_named():
    data = read_experiment("ss-caformer-unet")
    with pytest.raises(ConfigError, match="ensemble.methd: unknown key"):
        resolve_experiment(data, "full", ["ensemble.methd=mean"])
    with pytest.raises(ConfigError, match="val_fold 25 must be below folds.k=20"):
        resolve_experiment(data, "full", ["runs=[{name: a, val_fold: 25}]"])
    with pytest.raises(ConfigError, match="duplicated run names"):
        resolve_experiment(data, "full", ["runs=[{name: a}, {name: a}]"])
    with pytest.raises(ConfigError, match="size"):
        resolve_experiment(data, "huge")


def test_show_prints_the_resolved_experiment():
    from seisinv.cli.main import app

    result = CliRunner().invoke(app, ["experiment", "show", "ss-eva-attention", "--size", "tiny",
                                      "--set", "ensemble.method=mean"])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["ensemble"]["method"] == "mean" and len(shown["runs"]) == 3


def test_run_config_layers_recipe_experiment_and_run(tmp_path):
    from seisinv.experiment.runner import Context, ExperimentState

    spec = load_experiment("ss-eva02-fusion", "full")
    ctx = Context(spec=spec, out=tmp_path, train_dirs=[tmp_path / "train"],
                  test_dir=tmp_path / "test", survey=SPEED_STRUCTURE, device="cpu",
                  state=ExperimentState(tmp_path / "state.json"), echo=print)
    tiny = ctx.run_config(next(r for r in spec.runs if r.name == "tiny8-seed3487"))
    assert tiny.seed == 3487 and tiny.epochs == 80 and tiny.model.options["split"] == 8
    assert tiny.model.options["backbone"] == "eva02_tiny_patch14_224.mim_in22k"
    assert tiny.loss.terms[0].options == {"bottom": 0.25, "hard_pixels": True}
    assert tiny.folds.file == str(tmp_path / "folds.csv") and tiny.folds.val_fold == 0
    base = ctx.run_config(spec.runs[0])
    assert base.model.options["split"] == 6 and base.epochs == 40
    assert base.data.train == [str(tmp_path / "train")]


# ---- end to end -------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", PACKAGED)
def test_packaged_experiment_runs_end_to_end_tiny(name, ss_data, tmp_path):
    from seisinv.inference.submission import read_speed_structure

    out = tmp_path / "out"
    spec = load_experiment(name, "tiny")
    result = run_experiment(spec, [ss_data / "train"], ss_data / "test", out, size="tiny",
                            device="cpu", progress=False)
    maps = read_speed_structure(result.submission)
    assert list(maps) == ["t000"] and maps["t000"].shape == (1259, 300)  # read back depth first
    for run in spec.runs:
        assert (out / "runs" / run.name / "checkpoints" / "last").is_dir()
        assert (out / "predictions" / run.name / "velocity" / "t000.npy").is_file()
    assert (out / "ensemble" / "velocity" / "t000.npy").is_file()
    resolved = yaml.safe_load((out / "experiment.yaml").read_text())
    assert resolved["experiment"]["name"] == name and resolved["inputs"]["size"] == "tiny"
    assert [row.name for row in result.scores][:-1] == [r.name for r in spec.runs]
    assert all(row.val_mape is not None for row in result.scores[:-1])
    # seed 001's runs share validation fold 0: the ensemble is scored there too.
    shared = len({run.val_fold for run in spec.runs}) == 1
    assert (result.scores[-1].val_mape_tta is not None) == shared
    assert all((row.val_mape_tta is not None) == shared for row in result.scores)
    assert (out / "validation" / "ensemble").is_dir() == shared
    if spec.generate is not None:
        folds = dict(line.split(",") for line in (out / "folds.csv").read_text().split()[1:])
        generated = [i for i in folds if i.startswith("gen-")]
        assert generated and all(folds[i] == "-1" for i in generated)  # never validate


@pytest.mark.slow
def test_resume_after_a_kill_in_the_second_training_run_redoes_nothing_finished(ss_data,
                                                                               tmp_path):
    out = tmp_path / "out"
    overrides = ["train.steps=4", "train.checkpoint.every_steps=1"]
    spec = load_experiment("ss-eva-attention", "tiny", overrides)
    second = spec.runs[1].name
    lines: list[str] = []

    def kill(run, line):
        if run == second:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        run_experiment(spec, [ss_data / "train"], ss_data / "test", out, size="tiny",
                       overrides=overrides, device="cpu", echo=lines.append,
                       hooks={"validation": kill}, progress=False)
    first_weights = out / "runs" / spec.runs[0].name / "checkpoints" / "last" / "model.safetensors"
    stamp = first_weights.stat().st_mtime_ns
    saved = out / "runs" / second / "checkpoints" / "last"
    assert saved.is_dir()  # the kill came mid-run, after a step checkpoint

    lines.clear()
    result = run_experiment(spec, [ss_data / "train"], ss_data / "test", out, size="tiny",
                            overrides=overrides, device="cpu", echo=lines.append,
                            progress=False)
    assert first_weights.stat().st_mtime_ns == stamp
    assert any(f"{spec.runs[0].name}: done earlier" in line for line in lines)
    assert any(f"{second} (resuming)" in line for line in lines)
    assert result.stages_run == ["train", "predict", "validate", "ensemble", "fwi", "submission"]
    assert result.submission.is_file()

    lines.clear()
    again = run_experiment("ss-eva-attention", [ss_data / "train"], ss_data / "test", out,
                           size="tiny", overrides=overrides, device="cpu", echo=lines.append,
                           progress=False)
    assert again.stages_run == [] and not lines

    changed = load_experiment("ss-eva-attention", "tiny", [*overrides, "ensemble.method=mean"])
    with pytest.raises(ConfigError, match=r"experiment\.ensemble\.method.*inputs\.overrides"):
        run_experiment(changed, [ss_data / "train"], ss_data / "test", out, size="tiny",
                       overrides=[*overrides, "ensemble.method=mean"], device="cpu",
                       progress=False)


def test_unknown_hook_and_ensemble_method_are_refused(ss_data, tmp_path):
    spec = load_experiment("ss-eva-attention", "tiny", ["ensemble.method=best_guess",
                                                        "stages=[ensemble]"])
    with pytest.raises(ConfigError, match="hooks: unknown"):
        run_experiment(spec, [ss_data / "train"], ss_data / "test", tmp_path / "a",
                       hooks={"after_everything": print})
    with pytest.raises(SeisinvError, match="ensemble method 'best_guess'"):
        run_experiment(spec, [ss_data / "train"], ss_data / "test", tmp_path / "b",
                       progress=False)


def _ensemble_context(tmp_path, settings: list[str]):
    from seisinv.experiment.runner import Context, ExperimentState
    from seisinv.inference.store import PredictionStore

    survey = SPEED_STRUCTURE.replace(name="small-ss", nz=40, nx=3, source_x=(0.0, 2.0),
                                     receiver_x=(0.0, 1.0), shot_names=("1", "3"))
    runs = "[{name: a1, family: a}, {name: a2, family: a}, {name: a3, family: a}, " \
           "{name: b1, family: b}]"
    spec = resolve_experiment(read_experiment("ss-eva-attention"), "full",
                              [f"runs={runs}", *settings])
    values = {"a1": 1.0, "a2": 2.0, "a3": 6.0, "b1": 4.0}
    for name, value in values.items():
        PredictionStore(tmp_path / "predictions" / name, survey).write(
            "x", np.full((40, 3), value, np.float32))
    return Context(spec=spec, out=tmp_path, train_dirs=[tmp_path], test_dir=tmp_path,
                   survey=survey, device="cpu", state=ExperimentState(tmp_path / "state.json"),
                   echo=lambda line: None, progress=False)


@pytest.mark.parametrize(("settings", "expected"), [
    (["ensemble.method=mean"], (1 + 2 + 6 + 4) / 4),
    (["ensemble.method=median"], 3.0),
    (["ensemble.method=weighted", "ensemble.weights={a3: 1, b1: 3}"], (6 + 3 * 4) / 4),
    # per family: median of a = 2, b = 4; then the mean of the families.
    (["ensemble.method=median", "ensemble.per_family=true", "ensemble.family_method=mean"], 3.0),
])
def test_ensemble_stage_methods(tmp_path, settings, expected):
    from seisinv.experiment.stages import STAGES
    from seisinv.inference.store import PredictionStore

    ctx = _ensemble_context(tmp_path, settings)
    STAGES.get("ensemble")(ctx)
    np.testing.assert_allclose(PredictionStore(tmp_path / "ensemble").read("x"), expected)


def test_submission_stage_writes_a_kaggle_csv_the_reader_accepts(tmp_path):
    from seisinv.experiment.runner import Context, ExperimentState
    from seisinv.experiment.stages import STAGES
    from seisinv.inference.store import PredictionStore
    from seisinv.inference.submission import read_kaggle_gwi
    from seisinv.survey import OPENFWI

    test = tmp_path / "test"
    test.mkdir()
    ensemble = PredictionStore(tmp_path / "ensemble", OPENFWI)
    for k, sample_id in enumerate(["000039dca2", "0001026c8b"]):
        np.save(test / f"{sample_id}.npy", np.zeros(OPENFWI.gather_shape, np.float32))
        ensemble.write(sample_id, np.full(OPENFWI.velocity_shape, 2000.0 + k, np.float32))
    spec = resolve_experiment(read_experiment("ss-eva-attention"), "full",
                              ["submission=kaggle-gwi", "recipe=tiny-openfwi"])
    ctx = Context(spec=spec, out=tmp_path, train_dirs=[tmp_path], test_dir=test, survey=OPENFWI,
                  device="cpu", state=ExperimentState(tmp_path / "state.json"),
                  echo=lambda line: None, progress=False)
    STAGES.get("submission")(ctx)
    maps = read_kaggle_gwi(tmp_path / "submission.csv")
    assert sorted(maps) == ["000039dca2", "0001026c8b"]
    np.testing.assert_allclose(maps["0001026c8b"][:, ::2], 2001.0)


def test_generate_stage_passes_mix_flips_to_a_generator_that_takes_it(tmp_path, monkeypatch):
    import dataclasses

    import seisinv.generation.job as job
    from seisinv.experiment.runner import Context, ExperimentState
    from seisinv.experiment.stages import STAGES

    @dataclasses.dataclass(frozen=True)
    class Spec:  # the generator's GenerateSpec with the geology branch's mix options
        survey: object
        families: tuple
        n: int
        seed: int = 0
        per_file: int = 500
        mix_from: str | None = None
        mix_flips: bool = True

    made = []
    monkeypatch.setattr(job, "GenerateSpec", Spec)
    monkeypatch.setattr(job, "run_generate", lambda spec, out, **kw: made.append(spec))
    spec = load_experiment("ss-caformer-unet", "full")
    ctx = Context(spec=spec, out=tmp_path, train_dirs=[tmp_path / "train"], test_dir=tmp_path,
                  survey=SPEED_STRUCTURE, device="cpu",
                  state=ExperimentState(tmp_path / "state.json"), echo=lambda line: None)
    STAGES.get("generate")(ctx)
    assert made[0].mix_flips is False and made[0].n == 20000
    assert made[0].mix_from == str(tmp_path / "train") and made[0].families == ("mix",)


def test_cli_run_reports_stages_and_refuses_changed_settings(ss_data, tmp_path):
    from seisinv.cli.main import app

    args = ["experiment", "run", "ss-eva02-fusion", "--train", str(ss_data / "train"),
            "--test", str(ss_data / "test"), "--out", str(tmp_path / "out"), "--size", "tiny",
            "--device", "cpu", "--set", "stages=[folds]"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "folds: fold 0: 1" in result.output and "tiny8-seed2" in result.output
    folds = (tmp_path / "out" / "folds.csv").read_text().split()[1:]
    assert len(folds) == 5  # five training samples, KFold(5) on the first 2999 ids
    changed = CliRunner().invoke(app, [*args, "--set", "folds.seed=1"])
    assert changed.exit_code != 0
    assert "experiment.folds.seed" in str(changed.exception)


def test_fwi_stage_refines_from_the_ensemble_and_the_submission_prefers_it(ss_data, tmp_path,
                                                                          monkeypatch):
    import seisinv.fwi.job as fwi_job
    from seisinv.experiment.runner import Context, ExperimentState
    from seisinv.experiment.stages import STAGES
    from seisinv.inference.store import PredictionStore
    from seisinv.inference.submission import read_speed_structure

    calls = []

    def fake_run_fwi(data, survey, init, out, config, **options):
        calls.append((str(data), init, options["limit"]))
        PredictionStore(out, survey).write("t000", np.full(survey.velocity_shape, 3.0, np.float32))

    monkeypatch.setattr(fwi_job, "run_fwi", fake_run_fwi)
    spec = load_experiment("ss-eva-attention", "tiny", ["fwi={config: {}, limit: 1}"])
    ctx = Context(spec=spec, out=tmp_path, train_dirs=[ss_data / "train"],
                  test_dir=ss_data / "test", survey=SPEED_STRUCTURE, device="cpu",
                  state=ExperimentState(tmp_path / "state.json"), echo=lambda line: None,
                  progress=False)
    PredictionStore(tmp_path / "ensemble", SPEED_STRUCTURE).write(
        "t000", np.full(SPEED_STRUCTURE.velocity_shape, 2.0, np.float32))
    STAGES.get("fwi")(ctx)
    assert calls == [(str(ss_data / "test"), str(tmp_path / "ensemble"), 1)]
    STAGES.get("submission")(ctx)
    np.testing.assert_allclose(read_speed_structure(tmp_path / "submission.npz")["t000"], 3.0)
