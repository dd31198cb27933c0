"""CLI: ``seisinv models`` lists the model zoo with parameter counts for a survey."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``models`` to ``app``."""

    @app.command("models")
    def models(
        survey: str = typer.Option("openfwi", "--survey", help="Survey preset or YAML file."),
        size: str = typer.Option(
            "default", "--size", help="Options to count with: default, tiny or full."
        ),
        show: str = typer.Option(None, "--show", help="Print this model's options and defaults."),
    ) -> None:
        """List registered architectures with their parameter counts for a survey."""
        # Heavy imports stay inside the command: the CLI imports every command module at start.
        import sys

        import torch
        from rich.console import Console
        from rich.table import Table

        from seisinv.errors import ConfigError
        from seisinv.models import count_parameters, create_model, list_models, model_options
        from seisinv.models.sizes import size_options
        from seisinv.survey import load_survey

        console = Console()
        if size not in ("default", "tiny", "full"):
            raise ConfigError(f"--size {size!r}; use default, tiny or full")
        if show:
            table = Table(title=f"{show} options")
            table.add_column("option")
            table.add_column("default")
            for key, value in model_options(show).items():
                table.add_row(key, repr(value))
            console.print(table)
            return
        resolved = load_survey(survey)
        table = Table(title=f"models for survey {resolved.name} ({resolved.nz} x {resolved.nx})")
        for column in ("name", "parameters", "options", "summary"):
            table.add_column(column, justify="right" if column == "parameters" else "left")
        for name in list_models():
            options = {} if size == "default" else size_options(name, size)
            # The meta device allocates no memory, so even full-size models count instantly.
            with torch.device("meta"):
                model = create_model(name, resolved, **options)
            doc = sys.modules[type(model).__module__].__doc__ or ""
            summary = " ".join(doc.strip().split("\n\n")[0].split()).replace("``", "")
            shown = ", ".join(f"{k}={v}" for k, v in options.items()) or "(defaults)"
            table.add_row(name, f"{count_parameters(model):,}", shown, summary)
        console.print(table)
