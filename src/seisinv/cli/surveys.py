"""CLI: ``seisinv surveys`` lists the survey presets and shows one as YAML."""

from __future__ import annotations

import typer
import yaml
from rich.console import Console
from rich.table import Table

from seisinv.survey import PRESETS, load_survey


def register(app: typer.Typer) -> None:
    """Add ``surveys`` to ``app``."""

    @app.command("surveys")
    def surveys(
        show: str = typer.Option(None, "--show", help="Print this survey (preset or YAML) in full."),
    ) -> None:
        """List survey presets, or print one survey's full definition as YAML."""
        console = Console()
        if show:
            console.print(yaml.safe_dump(load_survey(show).to_dict(), sort_keys=False))
            return
        table = Table(title="survey presets")
        for col in ("name", "grid (nz x nx)", "spacing m", "dt s", "nt", "shots", "receivers", "velocity"):
            table.add_column(col)
        for s in PRESETS.values():
            table.add_row(
                s.name, f"{s.nz} x {s.nx}", f"{s.dz:g}", f"{s.dt:g}", str(s.nt), str(s.n_shots),
                str(s.n_receivers), f"{s.vmin:g}-{s.vmax:g} {s.units}",
            )
        console.print(table)
