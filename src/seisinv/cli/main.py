"""Entry point of the ``seisinv`` command.

Each command lives in its own module under ``seisinv.cli`` and exposes ``register(app)``.
Library errors (``SeisinvError``) become one red line and exit status 1; no stack trace.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

from seisinv.errors import SeisinvError

app = typer.Typer(
    name="seisinv",
    help="Data-driven seismic velocity inversion: generate, train, predict, refine with FWI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMAND_MODULES = (
    "surveys",
    "generate",
    "check",
    "models",
    "train",
    "predict",
    "evaluate",
    "fwi",
    "demo",
    "pseudo_label",
)



@app.callback()
def _root() -> None:
    """Data-driven seismic velocity inversion: generate, train, predict, refine with FWI."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"seisinv.cli.{_name}").register(app)

err_console = Console(stderr=True)


def main() -> None:
    """Run the CLI, turning ``SeisinvError`` into a one-line message and exit status 1."""
    try:
        app()
    except SeisinvError as exc:
        # The message is plain text: brackets in it (``--set 'data.train=[DIR]'``) are not markup.
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
