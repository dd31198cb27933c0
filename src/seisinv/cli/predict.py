"""CLI: ``seisinv predict`` (model -> prediction directory), ``seisinv ensemble`` (combine prediction
directories) and ``seisinv submit`` (prediction directory -> challenge submission file).

Heavy imports (torch, the model code) happen inside the commands so ``seisinv --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer


def _floats(text: str | None) -> list[float] | None:
    from seisinv.errors import SeisinvError

    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SeisinvError(f"--weights {text!r}: expected comma-separated numbers, e.g. 0.3,0.7") from None


def register(app: typer.Typer) -> None:
    """Add ``predict``, ``ensemble`` and ``submit`` to ``app``."""

    @app.command("predict")
    def predict_command(
        data: Path = typer.Option(..., "--data", help="Dataset to predict (any layout seisinv reads)."),
        out: Path = typer.Option(..., "--out", help="Prediction directory (created; resumes)."),
        run: Path = typer.Option(None, "--run", help="Training run directory (uses checkpoints/best)."),
        checkpoint: Path = typer.Option(None, "--checkpoint", help="A checkpoint directory instead of --run."),
        tta: str = typer.Option(
            "none", "--tta",
            help="Test-time augmentation: none, or a comma list of flip, noise, scale (and identity), "
            "each optionally weighted: flip:1,noise:0.5.",
        ),
        weights: str = typer.Option("ema", "--weights", help="ema (default) or model."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        batch: int = typer.Option(
            None, "--batch",
            help="Samples per model call (default: 16 on a CPU, from free memory on a GPU).",
        ),
        overwrite: bool = typer.Option(
            False, "--overwrite",
            help="--out holds predictions of other data, checkpoint or settings: delete them "
            "and start again (default: refuse, naming the difference).",
        ),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    ) -> None:
        """Predict velocity maps (survey units) for every sample of --data with a trained model."""
        from rich.console import Console

        from seisinv.errors import SeisinvError

        if (run is None) == (checkpoint is None):
            raise SeisinvError("give exactly one of --run RUN_DIR or --checkpoint DIR")
        from seisinv.inference.predict import parse_tta, run_predict
        from seisinv.outdir import check_out_not_inside_inputs
        from seisinv.training import load_run

        names = parse_tta(tta)
        check_out_not_inside_inputs(out, [data])  # before loading; the checkpoint: run_predict
        loaded = load_run(run or checkpoint, which=weights, device=device)
        done, total = run_predict(loaded, data, out, tta=names, batch=batch, overwrite=overwrite,
                                  progress=progress)
        Console(stderr=True).print(
            f"predicted {done} sample(s) ({total - done} already done) with "
            f"{loaded.checkpoint} ({loaded.which} weights), tta={','.join(names) or 'none'} -> {out}",
            markup=False,
        )

    @app.command("ensemble")
    def ensemble_command(
        members: list[Path] = typer.Argument(
            ..., help="Prediction directories to combine (ensemble outputs too: ensembles of ensembles)."
        ),
        out: Path = typer.Option(..., "--out", help="Output prediction directory (with spread/)."),
        method: str = typer.Option(
            "mean", "--method", help="mean, median, weighted or hill_climb (greedy selection)."
        ),
        weights: str = typer.Option(None, "--weights", help="Comma-separated member weights, e.g. 0.6,0.4."),
        fit_on: Path = typer.Option(
            None, "--fit-on",
            help="Labelled dataset (or prediction dir) to fit weights / hill climbing / bias on.",
        ),
        plan_file: Path = typer.Option(
            None, "--plan", help="Apply the weights and post-processing of an earlier OUT/ensemble.json."
        ),
        metric: str = typer.Option("mae", "--metric", help="Metric the weight fit minimises: mae, mse, mape."),
        per_family: bool = typer.Option(False, "--per-family", help="Fit and apply one weight vector per family."),
        classifier: Path = typer.Option(
            None, "--classifier",
            help="Family-classifier run: gives test samples their family (with --per-family).",
        ),
        post: list[str] = typer.Option(
            None, "--post", help="Post-processing step name[:k=v,...]; repeat for a chain (in order)."
        ),
        hill_init: int = typer.Option(
            1, "--hill-init", help="hill_climb: start from the N best members (sorted initialisation)."
        ),
        device: str = typer.Option("auto", "--device", help="Device for --classifier: auto, cpu, cuda."),
        overwrite: bool = typer.Option(
            False, "--overwrite", help="--out was combined from other members or settings: "
            "delete it and start again (default: refuse, naming the difference)."),
    ) -> None:
        """Combine prediction directories sample by sample; the spread across members is kept."""
        from rich.console import Console

        from seisinv.errors import SeisinvError
        from seisinv.inference.ensemble import METHODS
        from seisinv.inference.ensemble_job import ENSEMBLE_WRITES, run_ensemble
        from seisinv.inference.postprocess import FITTERS, parse_post

        console = Console(stderr=True)
        if method not in METHODS:
            raise SeisinvError(f"--method {method!r}; use one of {', '.join(METHODS)}")
        given = [flag for flag, value in (("--weights", weights), ("--fit-on", fit_on),
                                          ("--plan", plan_file)) if value is not None]
        if METHODS[method].needs_weights and len(given) != 1:
            raise SeisinvError(f"--method {method} needs exactly one of --weights, --fit-on or --plan")
        if not METHODS[method].needs_weights and "--weights" in given:
            raise SeisinvError("--weights only applies to --method weighted or hill_climb")
        if classifier is not None and not per_family:
            raise SeisinvError("--classifier gives test samples a family for --per-family weights; "
                               "add --per-family")
        if hill_init < 1:
            raise SeisinvError(f"--hill-init {hill_init}: must be at least 1")
        specs = [parse_post(text) for text in post or []]
        model = None
        if classifier is not None:
            from seisinv.training import load_run

            model = load_run(classifier, device=device).model
        truth = None
        if fit_on is not None:
            from seisinv.evaluation.truth import load_truth
            from seisinv.inference.store import PredictionStore

            truth = load_truth(fit_on, PredictionStore(members[0]).survey)
        fitted_post = any(s["name"] in FITTERS and "offset" not in s for s in specs)
        if fitted_post and fit_on is None:
            raise SeisinvError("--post bias is fitted on validation data: add --fit-on VAL_DIR")
        if fit_on is not None and not METHODS[method].needs_weights and not fitted_post:
            raise SeisinvError("--fit-on only applies to --method weighted / hill_climb or a fitted "
                               "--post step (bias)")
        from seisinv.outdir import claim_output, dataset_identity

        # The members' maps only: qc/evaluate files added beside them change nothing.
        provenance = {
            "members": dataset_identity([m / "velocity" for m in members]),
            "settings": {"method": method, "weights": weights, "metric": metric,
                         "per_family": per_family, "post": list(post or []),
                         "hill_init": hill_init,
                         "classifier": str(classifier) if classifier else None},
            "plan": dataset_identity(plan_file) if plan_file is not None else None,
            "fit_on": dataset_identity(fit_on) if fit_on is not None else None,
        }
        with claim_output(out, "seisinv ensemble", provenance, overwrite=overwrite,
                          inputs=[*members, fit_on, plan_file, classifier],
                          writes=ENSEMBLE_WRITES):
            result = run_ensemble(
                members, out, method=method, weights=_floats(weights), truth=truth,
                plan=plan_file, metric=metric, per_family=per_family, classifier=model,
                post=specs,
                fit_options=({"init": hill_init} if method == "hill_climb" and hill_init != 1
                             else None),
            )
        if result.plan.weights:
            for family, w in result.plan.weights.items():
                label = "all families" if family == "*" else family
                console.print(f"weights ({label}): " + ", ".join(f"{x:.3f}" for x in w), markup=False)
        if result.post:
            console.print("post-processing: " + " -> ".join(s["name"] for s in result.post), markup=False)
        if result.predicted_families:
            counts: dict[str, int] = {}
            for family in result.predicted_families.values():
                counts[family] = counts.get(family, 0) + 1
            console.print("classifier families: " + ", ".join(f"{f} {n}" for f, n in sorted(counts.items())),
                          markup=False)
        console.print(f"combined {result.written} sample(s) from {len(members)} member(s) -> {out}",
                      markup=False)

    @app.command("submit")
    def submit_command(
        predictions: Path = typer.Argument(..., help="Prediction directory."),
        fmt: str = typer.Option(..., "--format", help="speed-structure (.npz) or kaggle-gwi (.csv)."),
        out: Path = typer.Option(..., "--out", help="Submission file to write."),
        ids_from: Path = typer.Option(
            None, "--ids-from", help="Test dataset whose sample ids the file must cover exactly."
        ),
    ) -> None:
        """Write a challenge submission file; refuses (and writes nothing) if anything is invalid."""
        from rich.console import Console

        from seisinv.data import open_dataset
        from seisinv.inference.store import PredictionStore
        from seisinv.inference.submission import (
            StoreMapping,
            challenge_grid_note,
            write_submission,
        )

        store = PredictionStore(predictions)
        expected = None if ids_from is None else open_dataset(ids_from, store.survey).ids
        from seisinv.cli.main import renamed
        from seisinv.errors import SeisinvError

        mapping = StoreMapping(store)
        try:
            path = write_submission(fmt, out, mapping, store.survey, expected)
        except SeisinvError as exc:
            raise renamed(exc, "path", "--out") from None
        note = "" if expected is not None else " (ids not checked: pass --ids-from TEST_DIR)"
        console = Console(stderr=True)
        console.print(f"wrote {path}: {len(mapping)} sample(s), format {fmt}{note}", markup=False)
        grid_note = challenge_grid_note(fmt, store.survey)
        if grid_note is not None:
            console.print(f"note: {grid_note}", markup=False, style="yellow")
