"""How an experiment's member runs become prediction stores and one combined store.

``predict_runs`` predicts a source with every member run (its TTA, its checkpoint or blend of
checkpoints: ``run_checkpoints``); ``combine_runs`` combines the members' stores as the
experiment's ``ensemble`` section says (fixed weights, per run family, or weights fitted on the
validation fold and reapplied to the test, per velocity family through a classifier run). The
stages of ``seisinv.experiment.stages`` call them; the combination itself is
``seisinv.inference.ensemble`` / ``ensemble_job``.
"""

from __future__ import annotations

from pathlib import Path

from seisinv.errors import ConfigError


def predict_runs(ctx, stage: str, source, folder, what: str, record) -> None:
    """Predict ``source`` with every member run not yet done in ``stage`` (its TTA, the
    experiment's checkpoint or blend of checkpoints) into ``folder/<run>``; ``record(loaded_run)``
    (of the best checkpoint when the blend holds one) is kept in the stage's state."""
    from seisinv.inference.predict import open_prediction_store
    from seisinv.inference.predict import predict as predict_source
    from seisinv.training.run import load_run

    settings = ctx.spec.predict
    members = ctx.spec.members
    for number, run in enumerate(members, start=1):
        if ctx.state.run_done(stage, run.name):
            continue
        ctx.call_hook("before_run", stage, run.name)
        checkpoints = run_checkpoints(ctx.out / "runs" / run.name, settings)
        tta = settings.tta if run.tta is None else run.tta
        ctx.echo(f"{stage} {number}/{len(members)} {run.name}: {what}, TTA "
                 f"{', '.join(tta) or 'none'}"
                 + (f", blend of {len(checkpoints)} checkpoints" if len(checkpoints) > 1 else ""))
        first = None
        for label, checkpoint, _ in checkpoints:
            loaded = load_run(checkpoint, device=ctx.device, checkpoint=label.split("-")[0])
            if first is None or label.startswith("best"):  # the summary shows best's score
                first = loaded
            target = folder / (run.name if len(checkpoints) == 1 else f"{run.name}@{label}")
            store = open_prediction_store(target, loaded, tta)
            predict_source(loaded, source, store, tta=tta, batch=settings.batch,
                           progress=ctx.progress)
        if len(checkpoints) > 1:
            from seisinv.inference.ensemble_job import run_ensemble

            run_ensemble([folder / f"{run.name}@{label}" for label, _, _ in checkpoints],
                         folder / run.name, method="weighted",
                         weights=[w for _, _, w in checkpoints], progress=ctx.progress)
        ctx.state.finish_run(stage, run.name, record(first))


def run_checkpoints(run_dir: Path, settings) -> list[tuple[str, Path, float]]:
    """``(label, checkpoint or run directory, weight)`` of each checkpoint a run predicts with.

    One checkpoint (``predict.checkpoint: best|last``): ``[(kind, run_dir, 1.0)]``. A blend
    ``{kind: weight}``: per kind, the newest ``predict.history`` stretches' checkpoints of that
    kind (labels ``<kind>-stretch-NNN``, the kind's weight shared equally), or the run's own
    ``best`` / ``last`` when ``history`` is 0 or no stretch kept one.
    """
    blend = settings.checkpoint
    if not isinstance(blend, dict):
        return [(blend, run_dir, 1.0)]
    found = []
    for kind, weight in blend.items():
        if weight == 0:
            continue
        stretches = sorted((run_dir / "checkpoints" / "history").glob(f"stretch-*/{kind}"))
        chosen = [(f"{kind}-{path.parent.name}", path)
                  for path in stretches[-settings.history:]] if settings.history else []
        chosen = chosen or [(kind, run_dir)]
        found += [(label, path, weight / len(chosen)) for label, path in chosen]
    return found


def _weights(ctx, names: list[str]) -> list[float] | None:
    weights = ctx.spec.ensemble.weights
    if weights is None:
        return None
    if isinstance(weights, dict):
        unknown = sorted(set(weights) - {run.name for run in ctx.spec.members})
        if unknown:
            raise ConfigError(f"ensemble.weights: unknown runs {unknown}")
        return [float(weights.get(name, 0.0)) for name in names]
    members = ctx.spec.members
    if len(weights) != len(members):
        raise ConfigError(f"ensemble.weights: {len(weights)} weights for {len(members)} member "
                          "runs")
    by_name = {run.name: w for run, w in zip(members, weights, strict=True)}
    return [float(by_name[name]) for name in names]


def _combine(members: list[str], out: Path, method: str, weights, ctx,
             base: Path | None = None) -> None:
    import shutil

    from seisinv.inference.ensemble import EnsemblePlan, ensemble_stores
    from seisinv.inference.store import PredictionStore

    if out.exists() and not (out / "manifest.json").exists():
        shutil.rmtree(out)
    base = ctx.out / "predictions" if base is None else base
    stores = [PredictionStore(base / name) for name in members]
    target = PredictionStore(out, ctx.survey, source=f"experiment {ctx.spec.name} ensemble",
                             info={"method": method, "members": members, "weights": weights})
    target.refuse_other_settings({"method": method, "members": members, "weights": weights},
                                 "two ensembles")
    plan = EnsemblePlan(method=method, weights={"*": weights} if weights else {})
    ensemble_stores(stores, target, plan, progress=ctx.progress)


def combine_runs(ctx, base: Path, out: Path, label: str = "ensemble", truth=None,
                 plan: Path | None = None, classifier=None) -> None:
    """Combine the member run stores under ``base`` (``base/<run>``) into ``out`` as the
    experiment's ``ensemble`` section says: fixed weights (per run family first when asked), or
    weights fitted on ``truth`` (validation) / reapplied from ``plan`` (test) by
    ``seisinv.inference.ensemble_job.run_ensemble``, per velocity family with ``classifier``."""
    from seisinv.inference import ensemble as ensembles

    settings = ctx.spec.ensemble
    for method in (settings.method, settings.family_method):
        if method not in ensembles.METHODS:
            raise ConfigError(f"ensemble method {method!r}; known: {', '.join(ensembles.METHODS)}")
    names = [run.name for run in ctx.spec.members]
    if settings.fitted:
        from seisinv.inference.ensemble_job import run_ensemble

        how = "fitted on validation" if truth is not None else f"weights of {plan}"
        ctx.echo(f"{label}: {settings.method} of {len(names)} runs ({how}"
                 f"{', per family' if settings.weights_per_family else ''})")
        result = run_ensemble([base / name for name in names], out, method=settings.method,
                              truth=truth, plan=plan, metric=settings.metric,
                              per_family=settings.weights_per_family, classifier=classifier,
                              fit_options=settings.fit_options or None, progress=ctx.progress)
        for family, weights in result.plan.weights.items():
            ctx.echo(f"  weights {family}: " + ", ".join(
                f"{name} {w:.3f}" for name, w in zip(names, weights, strict=True)))
        if result.predicted_families:
            counts: dict[str, int] = {}
            for family in result.predicted_families.values():
                counts[family] = counts.get(family, 0) + 1
            ctx.echo("  classifier families: " + ", ".join(f"{f} {n}"
                                                           for f, n in sorted(counts.items())))
        return
    if not settings.per_family:
        ctx.echo(f"{label}: {settings.method} of {len(names)} runs")
        _combine(names, out, settings.method, _weights(ctx, names), ctx, base)
        return
    families: dict[str, list[str]] = {}
    for run in ctx.spec.members:
        families.setdefault(run.family or run.name, []).append(run.name)
    for family, members in families.items():
        ctx.echo(f"{label}: {settings.method} of family {family} ({len(members)} runs)")
        _combine(members, base / f"family-{family}", settings.method, _weights(ctx, members),
                 ctx, base)
    ctx.echo(f"{label}: {settings.family_method} of {len(families)} families")
    _combine([f"family-{family}" for family in families], out, settings.family_method, None,
             ctx, base)
