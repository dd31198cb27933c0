"""CLI: ``seisinv check DIR...`` validates datasets and lists every problem in one pass."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add ``check`` to ``app``."""

    @app.command("check")
    def check(
        paths: list[Path] = typer.Argument(..., help="Dataset folders or .npy files to check."),
        survey: str = typer.Option(
            None, "--survey", "-s",
            help="Survey preset or YAML (default: the dataset's survey.yaml, else guessed from "
                 "the layout: speed-structure for per-sample folders, openfwi otherwise)."),
        value_samples: int = typer.Option(
            16, "--value-samples", min=1,
            help="Samples per stacked (OpenFWI) file whose values are read for NaN/units/range; "
                 "per-sample files are always read in full."),
        limit: int = typer.Option(200, "--limit", help="Problems listed before the summary."),
    ) -> None:
        """Check datasets: files, shapes, dtypes, truncation, NaN/Inf, units, range, ids.

        Exit status 1 when anything is wrong. Example: seisinv check train/ --survey openfwi
        """
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        from seisinv.data.check import category, check_dataset
        from seisinv.data.layout import guess_survey
        from seisinv.survey import load_survey

        chosen = load_survey(survey) if survey else guess_survey(paths[0])
        report = check_dataset(paths, chosen, value_samples=value_samples, progress=True)
        console = Console()
        for problem in report.problems[:limit]:
            console.print(f"[red]{category(problem)}[/]  {escape(str(problem))}", highlight=False,
                          soft_wrap=True)
        if len(report.problems) > limit:
            console.print(f"... and {len(report.problems) - limit} more (raise --limit)")

        table = Table(title=f"seisinv check (survey {report.survey!r})")
        for column in ("root", "layout", "samples", "values read"):
            table.add_column(column)
        for root in report.roots:
            table.add_row(str(root.root), root.layout, str(root.samples), str(root.value_checked))
        console.print(table)
        counts = report.counts()
        if counts:
            problems = Table(title="problems")
            problems.add_column("category")
            problems.add_column("count", justify="right")
            for name, count in sorted(counts.items()):
                problems.add_row(name, str(count))
            console.print(problems)
            console.print(f"[bold red]{len(report.problems)} problem(s) found[/]")
            raise typer.Exit(1)
        console.print("[bold green]no problems found[/]")
