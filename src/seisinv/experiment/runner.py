"""``run_experiment``: run an experiment's stages in order, resumable stage by stage and run by run.

A rerun with the same experiment and inputs skips every finished stage and run (a training run
killed midway resumes from its last checkpoint); a rerun with other settings is refused, naming
the differing keys, before anything is touched.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from seisinv.errors import ConfigError
from seisinv.io import write_json, write_yaml
from seisinv.outdir import differences
from seisinv.survey import Survey, load_survey

from .spec import ExperimentSpec, deep_merge
from .stages import STAGES, SUBMISSION_FILES

log = logging.getLogger(__name__)

RESOLVED_FILE = "experiment.yaml"
STATE_FILE = "state.json"
# Inputs that may change between a run and its rerun (where the work happens, not what it is).
RESUMABLE_INPUTS = ("device",)
# Hook names ``run_experiment(hooks=...)`` calls: stage start, run start, validation line.
HOOKS = ("before_stage", "before_run", "validation")


class ExperimentState:
    """``OUT/state.json``: the stages and runs finished, with what each reported."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict = {"stages": [], "runs": {}}
        if path.exists():
            try:
                self.data = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}: unreadable experiment state ({exc}); delete it to "
                                  "redo the unrecorded stages") from None

    def stage_done(self, stage: str) -> bool:
        return stage in self.data["stages"]

    def finish_stage(self, stage: str) -> None:
        self.data["stages"].append(stage)
        write_json(self.path, self.data)

    def run_done(self, stage: str, run: str) -> bool:
        return run in self.data["runs"].get(stage, {})

    def run_record(self, stage: str, run: str) -> dict:
        return self.data["runs"].get(stage, {}).get(run, {})

    def finish_run(self, stage: str, run: str, record: dict) -> None:
        self.data["runs"].setdefault(stage, {})[run] = record
        write_json(self.path, self.data)


@dataclass
class Context:
    """What every stage sees.

    Attributes:
        spec: the resolved experiment.
        out: the experiment directory.
        train_dirs: the ``--train`` dataset roots (absolute).
        test_dir: the ``--test`` dataset root (absolute).
        survey: the survey of every run.
        device: "auto", "cpu", "cuda"...
        state: the finished stages and runs.
        echo: progress lines (rich markup allowed).
        hooks: ``{name: callable}`` among ``HOOKS`` (tests use them to interrupt).
        progress: draw progress bars.
    """

    spec: ExperimentSpec
    out: Path
    train_dirs: list[Path]
    test_dir: Path
    survey: Survey
    device: str
    state: ExperimentState
    echo: Callable[[str], None]
    hooks: dict[str, Callable] = field(default_factory=dict)
    progress: bool = True

    def call_hook(self, name: str, *args) -> None:
        hook = self.hooks.get(name)
        if hook is not None:
            hook(*args)

    def run_config(self, run):
        """The ``TrainConfig`` of one run: recipe, then the experiment's (not for a run with its
        own recipe) and the run's overrides, then the pool, the folds file, the seed, the device
        and ``init_from`` (an earlier run's directory)."""
        from seisinv.training.config import config_from_dict, load_config

        from .stages import pool_dirs

        data = load_config(run.recipe or self.spec.recipe).to_dict()
        if run.recipe is None:
            data = deep_merge(data, self.spec.train)
        data = deep_merge(data, run.train)
        if run.init_from is not None:
            which = run.init_from.partition(":")[2]
            data["init_from"] = str(self.out / "runs" / run.init_run) + (f":{which}" if which
                                                                         else "")
        data["name"] = f"{self.spec.name}/{run.name}"
        # A family classifier learns from maps whose family is known: pseudo-labelled test maps
        # (network predictions, family unknown) stay out of its data.
        data["data"]["train"] = pool_dirs(self, pseudo=data.get("task", "velocity") != "family")
        data["data"]["val"] = []
        data["data"]["survey"] = self.spec.survey or data["data"]["survey"]
        data["folds"] = {"k": self.spec.folds.k, "val_fold": run.val_fold,
                         "seed": self.spec.folds.seed, "file": str(self.out / "folds.csv"),
                         "holdout": 0.0}
        data["seed"] = run.seed
        data["device"] = self.device
        return config_from_dict(data, source=f"experiment {self.spec.name}, run {run.name}")


@dataclass
class RunScore:
    """One row of the final table: a run (or the ensemble) and its scores (None: unknown).

    ``val_mape`` / ``val_mae``: the best checkpoint's validation (no TTA); ``val_mape_tta``: the
    ``validate`` stage's, with the experiment's TTA (runs sharing a fold, and their ensemble);
    ``test_mape``: when the test folders hold velocities.
    """

    name: str
    family: str = ""
    val_fold: int | None = None
    val_mape: float | None = None
    val_mae: float | None = None
    val_mape_tta: float | None = None
    test_mape: float | None = None


@dataclass
class ExperimentResult:
    """What ``run_experiment`` produced.

    Attributes:
        out: the experiment directory.
        submission: the submission file.
        scores: one row per run, then the ensemble.
        stages_run: the stages this call worked on (finished ones skipped are not listed).
    """

    out: Path
    submission: Path
    scores: list[RunScore]
    stages_run: list[str]


def _check_resolved(out: Path, resolved: dict) -> None:
    """Write ``OUT/experiment.yaml``, or refuse a rerun whose experiment or inputs differ."""
    path = out / RESOLVED_FILE
    if path.exists():
        earlier = yaml.safe_load(path.read_text()) or {}
        differing = [key for key in differences(earlier, resolved)
                     if key.split(".")[-1] not in RESUMABLE_INPUTS]
        if differing:
            raise ConfigError(
                f"out {out}: holds experiment {earlier.get('experiment', {}).get('name')!r} run "
                f"with other settings; differing: {', '.join(differing)}. Rerun with the same "
                "experiment, size, overrides and data, or choose another output", "out"
            )
    write_yaml(path, resolved)


def _scores(store_dir: Path, truth: dict) -> tuple[float | None, float | None]:
    """(MAPE, MAE) of a prediction store over the samples of ``truth`` it holds (None: none)."""
    import numpy as np

    from seisinv.inference.store import PredictionStore
    from seisinv.metrics import mae_per_sample, mape_per_sample

    if not truth or not (store_dir / "manifest.json").exists():
        return None, None
    store = PredictionStore(store_dir)
    ids = [i for i in truth if store.has(i)]
    if not ids:
        return None, None
    pred = np.stack([store.read(i) for i in ids])
    true = np.stack([truth[i] for i in ids])
    return float(mape_per_sample(pred, true).mean()), float(mae_per_sample(pred, true).mean())


def _summary(ctx: Context) -> list[RunScore]:
    """Validation scores per run (its best checkpoint's) and of the ensemble (when the runs share
    a validation fold, ``validate`` stage), and test MAPE where the test set has velocities."""
    from seisinv.data import open_dataset

    from .stages import pool_dirs

    test = open_dataset(ctx.test_dir, ctx.survey)
    known = [i for i, k in enumerate(getattr(test, "velocity_known", [])) if k]
    test_truth = {test.ids[i]: test[i].velocity for i in known}
    val_truth = {}
    validation = ctx.out / "validation" / "ensemble"
    if (validation / "manifest.json").exists():
        from seisinv.inference.store import PredictionStore

        wanted = set(PredictionStore(validation).ids())
        pool = open_dataset(pool_dirs(ctx), ctx.survey)
        val_truth = {sample_id: pool[i].velocity for i, sample_id in enumerate(pool.ids)
                     if sample_id in wanted}

    rows = []
    for run in ctx.spec.runs:
        # Runs that only feed others (member: false) are scored by their last validation.
        val = (ctx.state.run_record("predict", run.name).get("val")
               or ctx.state.run_record("train", run.name).get("last_val") or {})
        rows.append(RunScore(
            run.name, run.family, run.val_fold, val.get("mape"), val.get("mae"),
            val_mape_tta=_scores(ctx.out / "validation" / run.name, val_truth)[0],
            test_mape=_scores(ctx.out / "predictions" / run.name, test_truth)[0]))
    fold = {run.val_fold for run in ctx.spec.members}
    rows.append(RunScore(f"ensemble ({ctx.spec.ensemble.method})",
                         val_fold=fold.pop() if len(fold) == 1 and val_truth else None,
                         val_mape_tta=_scores(validation, val_truth)[0],
                         test_mape=_scores(ctx.out / "ensemble", test_truth)[0]))
    return rows


def run_experiment(
    spec: ExperimentSpec | str | os.PathLike,
    train: Sequence[str | os.PathLike],
    test: str | os.PathLike,
    out: str | os.PathLike,
    *,
    size: str = "full",
    overrides: Sequence[str] = (),
    device: str = "auto",
    echo: Callable[[str], None] | None = None,
    hooks: dict[str, Callable] | None = None,
    progress: bool = True,
) -> ExperimentResult:
    """Run (or finish) an experiment into ``out``.

    Args:
        spec: the resolved experiment (``load_experiment(name, size, overrides)``), or a
            packaged name / YAML path, then resolved here with ``size`` and ``overrides``.
        train: training dataset roots (Speed & Structure folders with ``vp_model.npy``, ...).
        test: the test dataset root (velocities optional: when present, test scores are shown).
        out: the experiment directory (created).
        size, overrides: recorded in ``experiment.yaml`` (how ``spec`` was resolved).
        device: "auto", "cpu", "cuda"... (may change between reruns).
        echo: receives one progress line per stage and run (default: logging).
        hooks: ``{name: callable}``: ``before_stage(stage)``, ``before_run(stage, run)``,
            ``validation(run, line)``; an exception raised there stops the experiment as a kill
            would (tests).
        progress: draw progress bars.

    Returns:
        An ``ExperimentResult``.

    Raises:
        ConfigError: ``out`` holds this experiment with other settings (keys named), an unknown
            stage or hook, or invalid settings.
        DataError / CheckpointError: from the stages.
    """
    if not isinstance(spec, ExperimentSpec):
        from .spec import load_experiment

        spec = load_experiment(spec, size, overrides)
    unknown_hooks = sorted(set(hooks or {}) - set(HOOKS))
    if unknown_hooks:
        raise ConfigError(f"hooks: unknown {unknown_hooks}; known: {', '.join(HOOKS)}")
    for stage in spec.stages:
        STAGES.get(stage)
    out = Path(out)
    train_dirs = [Path(p).resolve() for p in train]
    if not train_dirs:
        raise ConfigError("train: give at least one training dataset folder")
    test_dir = Path(test).resolve()
    from seisinv.outdir import check_out_not_inside_inputs, lock_output

    check_out_not_inside_inputs(out, [*train_dirs, test_dir])
    out.mkdir(parents=True, exist_ok=True)
    with lock_output(out, "seisinv experiment"):
        return _run_locked(spec, out, train_dirs, test_dir, size, overrides, device, echo, hooks,
                           progress)


def _run_locked(spec, out, train_dirs, test_dir, size, overrides, device, echo, hooks,
                progress) -> ExperimentResult:
    resolved = {
        "experiment": spec.to_dict(),
        "inputs": {"train": [str(p) for p in train_dirs], "test": str(test_dir), "size": size,
                   "overrides": list(overrides), "device": device},
    }
    _check_resolved(out, resolved)
    from seisinv.training.config import load_config

    survey_name = spec.survey or load_config(spec.recipe).data.survey
    ctx = Context(spec=spec, out=out, train_dirs=train_dirs, test_dir=test_dir,
                  survey=load_survey(survey_name), device=device,
                  state=ExperimentState(out / STATE_FILE), echo=echo or log.info,
                  hooks=dict(hooks or {}), progress=progress)
    stages_run = []
    for stage in spec.stages:
        if ctx.state.stage_done(stage):
            continue
        ctx.call_hook("before_stage", stage)
        STAGES.get(stage)(ctx)
        ctx.state.finish_stage(stage)
        stages_run.append(stage)
    return ExperimentResult(out=out, submission=out / SUBMISSION_FILES[spec.submission],
                            scores=_summary(ctx), stages_run=stages_run)
