"""CLI: ``seisinv fwi`` — refine velocity maps by full-waveform inversion into a prediction store.

The inversion options are generated from ``seisinv.fwi.config.FwiConfig``: one option per field,
its default and help text taken from the field (``--iters`` for ``iters``, ``--smooth-grad`` and
``--reg`` where a field names its flag). Only the job's own options (data, survey, start, output)
are declared here. Heavy imports (torch, deepwave, matplotlib) happen inside the command so
``seisinv --help`` stays fast.
"""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path

import typer

FWI_EXAMPLES = """
Examples:

  seisinv fwi --data test/ --survey openfwi --init preds/ --iters 60 --out preds_fwi/

  seisinv fwi --data test/ --survey openfwi --init preds/ --prior tv2d --prior-strength 1e-4 --out preds_tv/

  seisinv fwi --data test/ --survey openfwi --init smooth --optimizer adam --iters 60 --bands 8,15,0 --out fwi_smooth/
"""


def _bands(text: str) -> tuple[float, ...]:
    from seisinv.errors import ConfigError

    expected = ("expected comma-separated corner frequencies in Hz, low to high (0 = unfiltered, "
                "last), e.g. 8,15,0")
    try:
        corners = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"--bands {text!r}: {expected}") from None
    limited = [c for c in corners if c != 0]
    if (any(c < 0 for c in corners) or limited != sorted(set(limited))
            or 0 in corners[:len(limited)]):
        raise ConfigError(f"--bands {text!r}: {expected}")
    return corners


def _option_type(annotation) -> tuple[type, str]:
    """(CLI type, how the value reaches the config: "as-is" or "csv") of a config field type."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return str, "as-is"
    if origin is tuple:
        return str, "csv"
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _option_type(inner[0])[0], "as-is"
    return annotation, "as-is"


def config_parameters() -> tuple[list[inspect.Parameter], dict[str, str], dict[str, str]]:
    """Typer parameters for every ``FwiConfig`` field, the conversion per field and the flags."""
    from seisinv.fwi.config import FwiConfig, cli_flag

    params, conversion, flags = [], {}, {}
    for name, field in FwiConfig.model_fields.items():
        flag = cli_flag(name)
        kind, conversion[name] = _option_type(field.annotation)
        flags[name] = flag
        help_text = field.description or ""
        if typing.get_origin(field.annotation) is typing.Literal:
            help_text += f" [{'|'.join(map(str, typing.get_args(field.annotation)))}]"
        default = field.default
        if conversion[name] == "csv":
            default = ",".join(f"{b:g}" for b in default)
        if kind is bool:
            option = typer.Option(default, f"{flag}/--no-{flag[2:]}", help=help_text)
        else:
            option = typer.Option(default, flag, help=help_text)
        annotation = kind if default is not None else typing.Optional[kind]  # noqa: UP045
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=annotation))
    return params, conversion, flags


def register(app: typer.Typer) -> None:
    """Add ``fwi`` to ``app``."""
    job_params = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
        for name, kind, option in (
            ("data", list[Path], typer.Option(..., "--data", help="Dataset root(s) with the "
                                              "observed gathers.")),
            ("survey", str, typer.Option(..., "--survey", help="Survey preset name or YAML file.")),
            ("init", str, typer.Option(..., "--init", help="Start: smooth, gradient, or a "
                                       "prediction directory (a network's answer).")),
            ("out", Path, typer.Option(..., "--out", help="Output prediction directory "
                                       "(created; resumes).")),
            ("start_smoothing", float, typer.Option(0.0, "--start-smoothing", help="Smooth the "
                                                    "start by this many metres (0: as given).")),
            ("coarsen", typing.Optional[int], typer.Option(  # noqa: UP045
                None, "--coarsen", help="Simulate on an internal grid N times coarser "
                "(e.g. 4 for S&S).")),
            ("limit", typing.Optional[int], typer.Option(  # noqa: UP045
                None, "--limit", help="Only the first N samples.")),
            ("progress", bool, typer.Option(True, "--progress/--no-progress",
                                            help="Show a progress bar.")),
            ("overwrite", bool, typer.Option(
                False, "--overwrite", help="--out was made from other data, start or settings: "
                "delete it and start again (default: refuse, naming the difference).")),
        )
    ]
    config_params, conversion, flags = config_parameters()

    def fwi_command(**options) -> None:
        """Full-waveform inversion of every sample of --data from --init; writes the refined
        velocity as a prediction directory, per-sample histories (fwi/<id>.json, .csv, with the
        prior each sample used) and convergence.png."""
        from rich.console import Console

        from seisinv.fwi.config import fwi_config
        from seisinv.fwi.job import run_fwi

        values = {name: options[name] for name in conversion}
        for name, how in conversion.items():
            if how == "csv":
                values[name] = _bands(values[name])
        config = fwi_config(values, labels=flags)
        summary = run_fwi([str(d) for d in options["data"]], options["survey"], options["init"],
                          options["out"], config, limit=options["limit"],
                          smooth_sigma_m=options["start_smoothing"],
                          simulation_coarsen=options["coarsen"],
                          progress=options["progress"], overwrite=options["overwrite"])
        Console(stderr=True).print(
            f"fwi: inverted {len(summary.inverted)} sample(s), {len(summary.skipped)} already "
            f"done, {summary.wall_s:.1f} s -> {options['out']} (convergence.png, fwi/<id>.json)"
        )

    fwi_command.__signature__ = inspect.Signature(job_params + config_params)
    app.command("fwi", epilog=FWI_EXAMPLES)(fwi_command)
