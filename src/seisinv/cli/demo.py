"""CLI: ``seisinv demo``, the end-to-end main job (see ``seisinv.demo``)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""

    @app.command("demo")
    def demo_command(
        out: Path = typer.Option(Path("seisinv-demo"), "--out", help="Output folder (resumes)."),
        size: str = typer.Option("small", "--size", help="small (minutes, the real demo) or tiny (seconds)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    ) -> None:
        """Generate data, train a compact model, predict with flip TTA, evaluate against two
        baselines, run the physics check and write an HTML report - all on a CPU, in minutes."""
        from rich.console import Console

        from seisinv.demo import BASELINE_NAMES, run_demo
        from seisinv.evaluation.evaluate import Evaluation, metrics_table

        console = Console()
        result = run_demo(out, size=size, device=device,
                          echo=lambda line: console.print(line, style="bold cyan", markup=False))
        table = metrics_table(
            [Evaluation(name=name, units="m/s", overall=result.metrics[name])
             for name in ("model", *BASELINE_NAMES)],
            title=f"held-out test set ({result.metrics['model']['n']} samples)", per_family=False,
        )
        console.print(table)
        verdict = "beats" if result.model_beats_baselines else "does NOT beat"
        console.print(f"model {verdict} both baselines ({', '.join(BASELINE_NAMES)}) on MAE")
        for name, check in result.qc.items():
            console.print(
                f"physics check ({name}): median data misfit {check['median_misfit']:.2f}, "
                f"{check['n_flagged']} of {check['n']} flagged"
            )
        total = sum(v for k, v in result.seconds.items() if k != "total_this_call")
        console.print("stage times (s): " + ", ".join(
            f"{k} {v:.0f}" for k, v in result.seconds.items() if k != "total_this_call"
        ) + f"; total {total:.0f}")
        console.print(f"report: {result.report}")
