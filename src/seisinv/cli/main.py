"""Entry point of the ``seisinv`` command.

Each command lives in its own module under ``seisinv.cli`` and exposes ``register(app)``.
Library errors (``SeisinvError``) become one red line and exit status 1; no stack trace.
"""

from __future__ import annotations

import importlib
import logging
import re
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
    "experiment",
    "pseudo_label",
)



@app.callback()
def _root() -> None:
    """Data-driven seismic velocity inversion: generate, train, predict, refine with FWI."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"seisinv.cli.{_name}").register(app)

err_console = Console(stderr=True)


def renamed(exc: SeisinvError, argument: str, flag: str) -> SeisinvError:
    """``exc`` with the library argument ``argument`` at its start shown as the CLI's ``flag``
    (for a flag whose name differs from the Python argument: ``path`` -> ``--out``)."""
    text = str(exc)
    if getattr(exc, "argument", None) == argument and text.startswith(f"{argument} "):
        exc = SeisinvError(f"{flag} {text[len(argument) + 1:]}")
    return exc


# Python arguments whose flag is not ``--`` + the name with dashes.
FLAGS = {"overrides": "--set", "run_dir": "--out"}


def flag(argument: str) -> str:
    """The CLI flag of library argument ``argument`` (``per_file`` -> ``--per-file``)."""
    return FLAGS.get(argument, "--" + argument.replace("_", "-"))


def flag_message(exc: BaseException) -> str:
    """The one-line text of a library error, with Python argument names shown as flags: the
    ``argument`` the message starts with (``out /x: ...`` -> ``--out /x: ...``) and advice to
    ``pass NAME=True`` (-> ``pass --name``); OS errors (disk full, permissions) without a
    traceback."""
    if isinstance(exc, OSError) and not isinstance(exc, SeisinvError):
        from seisinv.io import is_disk_full

        where = f"{exc.filename}: " if exc.filename else ""
        if is_disk_full(exc):
            return (f"disk full while writing {exc.filename or 'the output'}; free space and "
                    "rerun the same command (finished work is kept; training: add --resume)")
        return f"{where}{exc.strerror or exc}"
    text = str(exc)
    argument = getattr(exc, "argument", None)
    if argument and re.match(rf"{re.escape(argument)}[ :]", text):
        text = flag(argument) + text[len(argument):]
    return re.sub(r"\bpass ([a-z_]+)=True\b", lambda m: f"pass {flag(m[1])}", text)


def setup_logging(level: int = logging.INFO) -> None:
    """Show the library's ``logging`` records (logger ``seisinv``) on stderr through rich."""
    from rich.logging import RichHandler

    logger = logging.getLogger("seisinv")
    if not any(isinstance(h, RichHandler) for h in logger.handlers):
        logger.addHandler(RichHandler(console=err_console, show_time=False, show_path=False,
                                      markup=False))
    logger.setLevel(level)


def main() -> None:
    """Run the CLI, turning ``SeisinvError`` (and ``OSError``: disk full, permissions) into a
    one-line message and exit status 1."""
    setup_logging()
    try:
        app()
    except (SeisinvError, OSError) as exc:
        # The message is plain text: brackets in it (``--set 'data.train=[DIR]'``) are not markup.
        err_console.print(f"[bold red]error:[/] {escape(flag_message(exc))}", highlight=False,
                          soft_wrap=True)
        sys.exit(1)
    except Exception as exc:
        # Libraries that wrap a full disk in their own exception (safetensors, torch.save).
        if DISK_FULL_TEXT not in str(exc):
            raise
        err_console.print(f"[bold red]error:[/] disk full ({escape(str(exc))}); free space and "
                          "rerun the same command (finished work is kept; training: add "
                          "--resume)", highlight=False, soft_wrap=True)
        sys.exit(1)


DISK_FULL_TEXT = "No space left on device"


if __name__ == "__main__":
    main()
