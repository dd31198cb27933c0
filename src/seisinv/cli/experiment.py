"""CLI: ``seisinv experiment list | show NAME | run NAME|FILE`` (see ``seisinv.experiment``)."""

from __future__ import annotations

from pathlib import Path

import typer


def _fmt(value: float | None, digits: int = 5) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def register(app: typer.Typer) -> None:
    """Add the ``experiment`` command group to ``app``."""
    group = typer.Typer(help="Challenge solutions as one resumable command: generate, train N "
                             "models, predict with TTA, ensemble, (FWI), submission.",
                        no_args_is_help=True)
    app.add_typer(group, name="experiment")

    @group.command("list")
    def list_command() -> None:
        """List the packaged experiments."""
        from rich.console import Console
        from rich.table import Table

        from seisinv.experiment import experiment_names, load_experiment

        table = Table(title="packaged experiments (seisinv experiment show NAME)")
        for column in ("name", "runs (full / tiny)", "submission", "description"):
            table.add_column(column)
        for name in experiment_names():
            full, tiny = load_experiment(name, "full"), load_experiment(name, "tiny")
            table.add_row(name, f"{len(full.runs)} / {len(tiny.runs)}", full.submission,
                          full.description)
        Console().print(table)

    @group.command("show")
    def show_command(
        name: str = typer.Argument(..., help="Packaged experiment name or YAML file."),
        size: str = typer.Option("full", "--size", help="tiny or full."),
        overrides: list[str] = typer.Option([], "--set", help="key=value override (repeatable)."),
    ) -> None:
        """Print the resolved experiment (sizes and --set applied) as YAML."""
        import yaml

        from seisinv.experiment import load_experiment

        spec = load_experiment(name, size, overrides)
        typer.echo(yaml.safe_dump(spec.to_dict(), sort_keys=False))

    @group.command("run")
    def run_command(
        name: str = typer.Argument(..., help="Packaged experiment name or YAML file."),
        train: list[Path] = typer.Option(..., "--train", help="Training dataset folder "
                                         "(repeatable)."),
        test: Path = typer.Option(..., "--test", help="Test dataset folder."),
        out: Path = typer.Option(..., "--out", help="Experiment folder (a rerun resumes)."),
        size: str = typer.Option("full", "--size", help="tiny (CPU, seconds per run) or full "
                                 "(what the authors ran)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        overrides: list[str] = typer.Option([], "--set", help="key=value override of the "
                                            "experiment, e.g. train.epochs=5 (repeatable)."),
    ) -> None:
        """Run (or finish) an experiment: progress per stage and run, then a table of scores."""
        from rich.console import Console
        from rich.table import Table

        from seisinv.errors import ConfigError
        from seisinv.experiment import load_experiment, run_experiment

        console = Console()
        try:
            spec = load_experiment(name, size, overrides)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("size ", "--size ", 1)) from None
        result = run_experiment(spec, train, test, out, size=size, overrides=overrides,
                                device=device, echo=console.print)
        table = Table(title=f"{spec.name}: validation and test scores")
        columns = ("run", "family", "val fold", "val MAPE", "val MAE", "val MAPE + TTA",
                   "test MAPE")
        for column in columns:
            table.add_column(column)
        for row in result.scores:
            table.add_row(row.name, row.family, "-" if row.val_fold is None else str(row.val_fold),
                          _fmt(row.val_mape), _fmt(row.val_mae, 4), _fmt(row.val_mape_tta),
                          _fmt(row.test_mape))
        console.print("val MAPE / MAE: best checkpoint, no TTA; val MAPE + TTA: the shared "
                      "validation fold predicted with the experiment's TTA (runs and ensemble)")
        console.print(table)
        console.print(f"submission: {result.submission}")
