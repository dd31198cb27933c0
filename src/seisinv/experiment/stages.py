"""The stages of an experiment: a registry of ``name -> function(ctx)``.

Each stage reads and writes under ``ctx.out`` and records what it finished in ``ctx.state``
(``OUT/state.json``) so a rerun skips it; stages with several runs (train, predict) record each
run as it finishes. A new stage (e.g. pseudo-labelling) is one function registered here and one
name in the experiment's ``stages`` list.

Layout of ``OUT``::

    experiment.yaml            the resolved experiment and its inputs (compared on a rerun)
    state.json                 stages and runs finished
    generated/                 synthetic training data (generate)
    folds.csv                  id,fold of the training pool (folds)
    runs/<run>/                one training run directory per model (train)
    predictions/<run>/         its test-set prediction store (predict); with a checkpoint blend
                               the weighted mean of predictions/<run>@<checkpoint>/
    validation/<run>/          its predictions of the shared validation fold (validate)
    validation/ensemble/       their ensemble, scored in the final table (validate); fitted
                               ensemble weights in its ensemble.json
    ensemble/                  the combined prediction store (ensemble)
    fwi/                       FWI-refined maps (fwi, optional)
    submission.npz | .csv      the challenge file (submission)
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from seisinv.errors import ConfigError, SeisinvError
from seisinv.registry import Registry

from .members import combine_runs, predict_runs

log = logging.getLogger(__name__)

Stage = Callable[["Context"], None]  # noqa: F821 - seisinv.experiment.runner.Context
STAGES: Registry[Stage] = Registry("experiment stage")

SUBMISSION_FILES = {"speed-structure": "submission.npz", "kaggle-gwi": "submission.csv"}


def pool_dirs(ctx, pseudo: bool = True) -> list[str]:
    """The training pool: the ``--train`` folders plus the generated data, when there is some,
    and (``pseudo``) the pseudo-labelled rounds so far."""
    dirs = [str(p) for p in ctx.train_dirs]
    generated = ctx.out / "generated"
    if ctx.spec.generate is not None and ctx.spec.generate.n > 0:
        dirs.append(str(generated))
    if not pseudo:
        return dirs
    # Pseudo-labelled test maps of finished ``pseudo_label`` rounds (training only: fold -1).
    labelled = ctx.state.data["runs"].get("pseudo_label", {})
    rounds = sorted(int(k.split("-")[1]) for k in labelled if k.endswith("-labels"))
    dirs.extend(str(ctx.out / "pseudo" / f"round-{k}") for k in rounds)
    return dirs


@STAGES.register("generate")
def generate(ctx) -> None:
    """Synthetic training samples (``seisinv.generation.run_generate``) into ``OUT/generated``."""
    spec = ctx.spec.generate
    if spec is None or spec.n == 0:
        ctx.echo("generate: nothing to generate")
        return
    import dataclasses

    from seisinv.generation.job import GenerateSpec, run_generate

    mix_from = spec.mix_from
    if mix_from == "train":
        if len(ctx.train_dirs) != 1:
            raise ConfigError(f"generate.mix_from 'train' needs exactly one training folder "
                              f"(train_dirs holds {len(ctx.train_dirs)}); give "
                              "generate.mix_from=PATH")
        mix_from = str(ctx.train_dirs[0])
    # Family options reach the generator as its ``<family>_<option>`` fields (mix ``flips`` ->
    # ``GenerateSpec.mix_flips``); a generator without the field is reported, not ignored.
    fields = {f.name for f in dataclasses.fields(GenerateSpec)}
    extra, unsupported = {}, {}
    for key, value in spec.options.items():
        field_names = [f"{family}_{key}" for family in spec.families
                       if f"{family}_{key}" in fields]
        if field_names:
            extra.update({name: tuple(value) if isinstance(value, list) else value
                          for name in field_names})
        else:
            unsupported[key] = value
    if unsupported:
        log.warning("generate.options %s: this seisinv's generator does not take them; "
                    "generated with its defaults", unsupported)
        ctx.echo(f"[yellow]generate: options {unsupported} not supported by this generator; "
                 "its defaults are used[/yellow]")
    job = GenerateSpec(survey=ctx.survey, families=tuple(spec.families), n=spec.n,
                       seed=spec.seed, per_file=spec.per_file, mix_from=mix_from, **extra)
    ctx.echo(f"generate: {spec.n} {'/'.join(spec.families)} samples -> {ctx.out / 'generated'}")
    run_generate(job, ctx.out / "generated", device=ctx.device, progress=ctx.progress)


@STAGES.register("folds")
def folds(ctx) -> None:
    """Split the training pool by the experiment's fold rule into ``OUT/folds.csv``."""
    from seisinv.data import open_dataset
    from seisinv.data.folds import write_folds

    from .folds import experiment_folds

    pool = open_dataset(pool_dirs(ctx), ctx.survey, require_velocity=True)
    assignment = experiment_folds(ctx.spec.folds, pool.ids, pool.synthetic, pool.families)
    write_folds(ctx.out / "folds.csv", assignment)
    counts = {}
    for fold in assignment.values():
        counts[fold] = counts.get(fold, 0) + 1
    ctx.echo("folds: " + ", ".join(f"{'train-only' if k < 0 else f'fold {k}'}: {v}"
                                   for k, v in sorted(counts.items())))


@STAGES.register("train")
def train(ctx) -> None:
    """Train every run not finished yet; a run with a saved ``last`` checkpoint resumes."""
    from seisinv.training.trainer import train as train_run

    for number, run in enumerate(ctx.spec.runs, start=1):
        if ctx.state.run_done("train", run.name):
            ctx.echo(f"train {number}/{len(ctx.spec.runs)} {run.name}: done earlier")
            continue
        ctx.call_hook("before_run", "train", run.name)
        config = ctx.run_config(run)
        run_dir = ctx.out / "runs" / run.name
        resume = (run_dir / "checkpoints" / "last").exists()
        ctx.echo(f"train {number}/{len(ctx.spec.runs)} {run.name}"
                 f"{' (resuming)' if resume else ''}: {config.model.name}, seed {config.seed}, "
                 f"validation fold {config.folds.val_fold}")
        if run.init_from is not None:
            ctx.echo(f"  {run.name}: weights from run {run.init_from} (new optimiser state)")
        elif run.recipe is None and not config.model.options.get("pretrained"):
            ctx.echo(f"  {run.name}: backbone weights randomly initialised (model.options."
                     "pretrained is false)")

        def echo(line: str, name: str = run.name) -> None:
            ctx.echo(f"  {name}: {line}")
            ctx.call_hook("validation", name, line)

        result = train_run(config, run_dir, resume=resume, echo=echo)
        if result.step < result.total_steps:
            raise SeisinvError(f"train {run.name}: stopped at step {result.step}/"
                               f"{result.total_steps}; rerun the experiment to continue")
        ctx.state.finish_run("train", run.name, {"step": result.step, "best": result.best,
                                                 "last_val": result.last_val})


@STAGES.register("predict")
def predict(ctx) -> None:
    """Predict the test set with every run (its TTA), one prediction store per run."""
    from seisinv.data import open_dataset

    source = open_dataset(ctx.test_dir, ctx.survey)
    predict_runs(ctx, "predict", source, ctx.out / "predictions", f"{len(source)} samples",
                 lambda loaded: {"val": loaded.val, "step": loaded.step,
                                 "checkpoint": str(loaded.checkpoint)})


@STAGES.register("ensemble")
def ensemble(ctx) -> None:
    """Combine the runs' prediction stores into ``OUT/ensemble`` (per family first if asked);
    fitted weights come from the validation ensemble's ``ensemble.json``, test samples' families
    from the ``ensemble.classifier`` run."""
    from seisinv.inference.ensemble_job import PLAN_FILE

    settings = ctx.spec.ensemble
    plan = classifier = None
    if settings.fitted:
        plan = ctx.out / "validation" / "ensemble" / PLAN_FILE
        if not plan.is_file():
            raise ConfigError(f"ensemble: {settings.method} weights are fitted by the 'validate' "
                              f"stage, but {plan} is missing (did the validation fold hold "
                              "samples?)")
    if settings.classifier is not None:
        from seisinv.training.run import load_run

        classifier = load_run(ctx.out / "runs" / settings.classifier, device=ctx.device).model
    combine_runs(ctx, ctx.out / "predictions", ctx.out / "ensemble", plan=plan,
                 classifier=classifier)


def shared_validation_fold(spec) -> int | None:
    """The validation fold every run holds out, or None when the runs' folds differ."""
    folds = {run.val_fold for run in spec.members}
    return folds.pop() if len(folds) == 1 else None


@STAGES.register("validate")
def validate(ctx) -> None:
    """When every run holds out the same fold (seed 001: fold 0), predict that fold with each run
    (its TTA) and ensemble them, so the final table scores the ensemble, and weight fits have
    out-of-sample predictions (``OUT/validation/<run>``). Runs holding out different folds have
    no common validation set: the stage then does nothing."""
    from seisinv.data import open_dataset
    from seisinv.data.folds import read_folds

    fold = shared_validation_fold(ctx.spec)
    if fold is None:
        ctx.echo("validate: the runs hold out different folds; no common validation set")
        return
    assignment = read_folds(ctx.out / "folds.csv")
    pool = open_dataset(pool_dirs(ctx), ctx.survey, require_velocity=True)
    source = pool.subset([i for i, sample_id in enumerate(pool.ids)
                          if assignment.get(sample_id) == fold])
    if len(source) == 0:
        ctx.echo(f"validate: fold {fold} holds no samples")
        return
    predict_runs(ctx, "validate", source, ctx.out / "validation",
                 f"fold {fold}, {len(source)} samples",
                 lambda loaded: {"fold": fold, "n": len(source)})
    truth = None
    if ctx.spec.ensemble.fitted:  # the weights are fitted here (in-sample score) for the test
        from seisinv.evaluation.truth import load_truth

        truth = load_truth(source)
    combine_runs(ctx, ctx.out / "validation", ctx.out / "validation" / "ensemble",
                 label="validation ensemble", truth=truth)


@STAGES.register("pseudo_label")
def pseudo_label(ctx) -> None:
    """Pseudo-labelling rounds (Kaggle GWI 1st place): the ensemble's test-set maps are simulated
    into ``OUT/pseudo/round-K`` (``seisinv.inference.pseudo_label.make_pseudo_labels``), added to
    the folds file as training only (fold -1, never validation), and every run is trained again
    on the pool plus them, then predicted, validated (fitted ensemble weights are fitted again)
    and ensembled; the previous round's ``runs``, ``predictions``, ``validation`` and
    ``ensemble`` move to ``OUT/pseudo/before-round-K``. Each step is recorded,
    so a rerun resumes inside a round."""
    import shutil

    from seisinv.data import open_dataset
    from seisinv.data.folds import read_folds, write_folds
    from seisinv.inference.pseudo_label import make_pseudo_labels

    settings = ctx.spec.pseudo_label
    if settings is None or settings.rounds == 0:
        ctx.echo("pseudo_label: no rounds")
        return
    for k in range(1, settings.rounds + 1):
        target = ctx.out / "pseudo" / f"round-{k}"
        if not ctx.state.run_done("pseudo_label", f"round-{k}-labels"):
            ctx.echo(f"pseudo_label round {k}: labelling the test set -> {target}")
            make_pseudo_labels(ctx.out / "ensemble", str(ctx.test_dir), ctx.survey, target,
                               ctx.device, round_index=k, progress=ctx.progress)
            ids = open_dataset(str(target), ctx.survey, require_velocity=True).ids
            folds_csv = ctx.out / "folds.csv"
            assignment = read_folds(folds_csv)
            assignment.update({sample_id: -1 for sample_id in ids})
            write_folds(folds_csv, assignment)
            ctx.state.finish_run("pseudo_label", f"round-{k}-labels", {"n": len(ids)})
        if not ctx.state.run_done("pseudo_label", f"round-{k}-moved"):
            before = ctx.out / "pseudo" / f"before-round-{k}"
            before.mkdir(parents=True, exist_ok=True)
            for name in ("runs", "predictions", "validation", "ensemble"):
                if (ctx.out / name).exists() and not (before / name).exists():
                    shutil.move(str(ctx.out / name), str(before / name))
            for stage in ("train", "predict", "validate"):
                ctx.state.data["runs"].pop(stage, None)
            ctx.state.finish_run("pseudo_label", f"round-{k}-moved", {})
        if not ctx.state.run_done("pseudo_label", f"round-{k}"):
            ctx.echo(f"pseudo_label round {k}: training the runs again with the pseudo labels")
            train(ctx)
            predict(ctx)
            if "validate" in ctx.spec.stages:  # new scores, and weights fitted to the new runs
                validate(ctx)
            ensemble(ctx)
            ctx.state.finish_run("pseudo_label", f"round-{k}", {})


@STAGES.register("fwi")
def fwi(ctx) -> None:
    """Optional FWI refinement starting from the ensemble (``seisinv.fwi.run_fwi``)."""
    settings = ctx.spec.fwi
    if settings is None:
        return
    from seisinv.fwi.config import FwiConfig
    from seisinv.fwi.job import run_fwi

    try:
        config = FwiConfig(**settings.config)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"fwi.config: {exc}") from None
    ctx.echo("fwi: refining the ensemble's maps")
    run_fwi(ctx.test_dir, ctx.survey, str(ctx.out / "ensemble"), ctx.out / "fwi", config,
            limit=settings.limit, simulation_coarsen=settings.simulation_coarsen,
            progress=ctx.progress)


@STAGES.register("submission")
def submission(ctx) -> None:
    """Write ``OUT/submission.npz`` (Speed & Structure) or ``.csv`` (Kaggle GWI), checked by the
    challenge writers; FWI-refined maps replace the ensemble's where present."""
    from seisinv.data import open_dataset
    from seisinv.inference.store import PredictionStore
    from seisinv.inference.submission import write_submission

    ensemble_store = PredictionStore(ctx.out / "ensemble")
    refined = None
    if ctx.spec.fwi is not None and (ctx.out / "fwi" / "manifest.json").exists():
        refined = PredictionStore(ctx.out / "fwi")
    ids = list(open_dataset(ctx.test_dir, ctx.survey).ids)
    maps = {}
    for sample_id in ids:
        store = refined if refined is not None and refined.has(sample_id) else ensemble_store
        if store.has(sample_id):
            maps[sample_id] = store.read(sample_id)
    if ctx.spec.postprocess:
        from seisinv.inference.postprocess import build_chain

        chain = build_chain(ctx.spec.postprocess, ctx.survey)
        maps = {sample_id: chain(velocity) for sample_id, velocity in maps.items()}
        ctx.echo(f"submission: post-processing {[s['name'] for s in ctx.spec.postprocess]}")
    path = ctx.out / SUBMISSION_FILES[ctx.spec.submission]
    write_submission(ctx.spec.submission, path, maps, ctx.survey, expected_ids=ids)
    ctx.echo(f"submission: {len(maps)} maps -> {path}")
