"""CLI: ``seisinv evaluate`` (metrics against labels), ``seisinv qc`` (physics check without labels)
and ``seisinv report`` (HTML page with figures).

Heavy imports (torch, deepwave, matplotlib) happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add ``evaluate``, ``qc`` and ``report`` to ``app``."""

    @app.command("evaluate")
    def evaluate_command(
        predictions: list[Path] = typer.Argument(..., help="Prediction directories to score."),
        truth: Path = typer.Option(..., "--truth", help="Labelled dataset (or a prediction dir)."),
        json_out: Path = typer.Option(None, "--json", help="Write all metrics (per sample too) here."),
        per_family: bool = typer.Option(True, "--per-family/--overall", help="Rows per family."),
    ) -> None:
        """MAE, RMSE (survey units), MAPE (Speed & Structure) and SSIM, per family and overall."""
        from rich.console import Console

        from seisinv.evaluation.evaluate import evaluate_store, metrics_table
        from seisinv.evaluation.truth import load_truth
        from seisinv.inference.store import PredictionStore
        from seisinv.io import write_json

        stores = [PredictionStore(p) for p in predictions]
        records = list(load_truth(truth, stores[0].survey).values())
        results = [evaluate_store(s, records, progress=True) for s in stores]
        console = Console()
        console.print(metrics_table(results, title=f"metrics vs {truth}", per_family=per_family))
        for result in results:
            if result.missing:
                console.print(f"[yellow]{result.name}: {len(result.missing)} labelled sample(s) "
                              "have no prediction (not scored)[/]")
        if json_out is not None:
            write_json(json_out, [r.to_dict() for r in results])
            console.print(f"wrote {json_out}")

    @app.command("qc")
    def qc_command(
        predictions: Path = typer.Argument(..., help="Prediction directory."),
        data: Path = typer.Option(..., "--data", help="The observed data the predictions are for."),
        threshold: float = typer.Option(None, "--threshold", help="Flag relative L2 misfit above this."),
        out: Path = typer.Option(None, "--out", help="Folder for qc.json / qc.csv (default: PREDICTIONS)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        batch: int = typer.Option(4, "--batch", help="Samples per forward-modelling call."),
        fit_amplitude: bool = typer.Option(
            False, "--fit-amplitude", help="Fit one amplitude factor per sample before comparing."
        ),
        limit: int = typer.Option(None, "--limit", help="Check only the first N samples."),
        threads: int = typer.Option(
            1, "--threads", help="Torch CPU threads (1 is fastest and steadiest for deepwave on "
            "small VMs; run one process per core instead, see docs/physics.md)."
        ),
    ) -> None:
        """Forward-model each prediction and compare with the recorded gathers (no labels needed)."""
        import torch
        from rich.console import Console

        from seisinv.data import open_dataset
        from seisinv.evaluation.qc import DEFAULT_THRESHOLD, qc_store, write_qc
        from seisinv.inference.store import PredictionStore

        torch.set_num_threads(max(1, threads))
        store = PredictionStore(predictions)
        source = open_dataset(data, store.survey)
        ids = None if limit is None else source.ids[:limit]
        result = qc_store(
            store, source, threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
            device=device, batch=batch, fit_amplitude=fit_amplitude, ids=ids,
        )
        json_path, csv_path = write_qc(result, out or predictions)
        Console().print(
            f"physics check: {len(result['samples'])} sample(s), median misfit "
            f"{result['median_misfit']:.3f}, {result['n_flagged']} flagged above "
            f"{result['threshold']:g}; {len(result['missing'])} without prediction -> {json_path}, "
            f"{csv_path}"
        )

    @app.command("report")
    def report_command(
        target: Path = typer.Argument(..., help="A training run directory or a prediction directory."),
        truth: Path = typer.Option(None, "--truth", help="Labelled dataset for true/error maps and metrics."),
        predictions: list[Path] = typer.Option(
            [], "--predictions", help="Prediction directories to show/compare (repeatable)."
        ),
        data: Path = typer.Option(None, "--data", help="Dataset whose gathers are drawn for the shown samples."),
        out: Path = typer.Option(None, "--out", help="Report folder (default: TARGET/report)."),
        samples: int = typer.Option(3, "--samples", help="How many samples to draw."),
        run: Path = typer.Option(None, "--run", help="Training run whose curves to draw (for a prediction dir)."),
    ) -> None:
        """Write an HTML report (figures + tables) for a run or prediction directory."""
        from rich.console import Console

        from seisinv.evaluation.report import report_for

        index = report_for(target, truth=truth, predictions=predictions, data=data,
                           out=out, n_samples=samples, run=run)
        Console().print(f"wrote {index}")
