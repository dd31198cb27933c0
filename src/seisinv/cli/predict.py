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


def _read_plan(path: Path) -> dict[str, list[float]]:
    """Weights of an ``ensemble.json`` written by an earlier ``seisinv ensemble`` fit."""
    import json

    from seisinv.errors import SeisinvError

    try:
        weights = json.loads(path.read_text())["weights"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SeisinvError(f"--plan {path}: not an ensemble.json with 'weights' ({exc})") from None
    if not weights:
        raise SeisinvError(f"--plan {path}: holds no weights (was it a mean/median ensemble?)")
    return weights


def register(app: typer.Typer) -> None:
    """Add ``predict``, ``ensemble`` and ``submit`` to ``app``."""

    @app.command("predict")
    def predict_command(
        data: Path = typer.Option(..., "--data", help="Dataset to predict (any layout seisinv reads)."),
        out: Path = typer.Option(..., "--out", help="Prediction directory (created; resumes)."),
        run: Path = typer.Option(None, "--run", help="Training run directory (uses checkpoints/best)."),
        checkpoint: Path = typer.Option(None, "--checkpoint", help="A checkpoint directory instead of --run."),
        tta: str = typer.Option(
            "none", "--tta", help="Test-time augmentation: none, flip, noise, scale, or a comma list."
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
        members: list[Path] = typer.Argument(..., help="Prediction directories to combine."),
        out: Path = typer.Option(..., "--out", help="Output prediction directory (with spread/)."),
        method: str = typer.Option("mean", "--method", help="mean, median or weighted."),
        weights: str = typer.Option(None, "--weights", help="Comma-separated member weights."),
        fit_on: Path = typer.Option(
            None, "--fit-on", help="Labelled dataset (or prediction dir) to fit weighted-mean weights on."
        ),
        plan_file: Path = typer.Option(
            None, "--plan", help="Apply the weights of an earlier fit (its OUT/ensemble.json)."
        ),
        metric: str = typer.Option("mae", "--metric", help="Metric the weight fit minimises: mae, mse, mape."),
        per_family: bool = typer.Option(False, "--per-family", help="Fit one weight vector per family."),
        overwrite: bool = typer.Option(
            False, "--overwrite", help="--out was combined from other members or settings: "
            "delete it and start again (default: refuse, naming the difference)."),
    ) -> None:
        """Combine prediction directories sample by sample; the spread across members is kept."""
        from rich.console import Console

        from seisinv.errors import SeisinvError
        from seisinv.evaluation.truth import load_truth
        from seisinv.inference.ensemble import METHODS, EnsemblePlan, ensemble_stores, fit_plan
        from seisinv.inference.store import PredictionStore
        from seisinv.io import write_json

        console = Console(stderr=True)
        if method not in METHODS:
            raise SeisinvError(f"--method {method!r}; use one of {', '.join(METHODS)}")
        stores = [PredictionStore(m) for m in members]
        plan = EnsemblePlan(method=method)
        families: dict[str, str | None] = {}
        if method == "weighted":
            if sum(x is not None for x in (weights, fit_on, plan_file)) != 1:
                raise SeisinvError(
                    "--method weighted needs exactly one of --weights, --fit-on or --plan"
                )
            if fit_on is not None:
                truth = load_truth(fit_on, stores[0].survey)
                families = {k: r.family for k, r in truth.items()}
                plan = fit_plan(
                    stores, {k: (r.velocity, r.family) for k, r in truth.items()},
                    metric=metric, per_family=per_family,
                )
            elif plan_file is not None:
                plan.weights = _read_plan(plan_file)
            else:
                plan.weights = {"*": _floats(weights)}
        elif weights is not None or fit_on is not None or plan_file is not None:
            raise SeisinvError("--weights / --fit-on / --plan only apply to --method weighted")
        info = {"members": [str(m) for m in members], **plan.to_dict()}
        from seisinv.outdir import claim_output, dataset_identity

        # The members' maps only: qc/evaluate files added beside them change nothing.
        provenance = {"members": dataset_identity([m / "velocity" for m in members]), "plan": info,
                      "fit_on": dataset_identity(fit_on) if fit_on is not None else None}
        with claim_output(out, "seisinv ensemble", provenance, overwrite=overwrite,
                          inputs=[*members, fit_on, plan_file]):
            out_store = PredictionStore(
                out, stores[0].survey, source=f"ensemble {method} of {len(stores)}", info=info
            )
            out_store.refuse_other_settings(info, "two ensembles")
            write_json(out / "ensemble.json", info)
            done = ensemble_stores(stores, out_store, plan, families)
        if plan.weights:
            for family, w in plan.weights.items():
                label = "all families" if family == "*" else family
                console.print(f"weights ({label}): " + ", ".join(f"{x:.3f}" for x in w), markup=False)
        console.print(f"combined {done} sample(s) from {len(stores)} member(s) -> {out}", markup=False)

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
