"""CLI: ``seisinv fwi`` — refine velocity maps by full-waveform inversion into a prediction store.

Heavy imports (torch, deepwave, matplotlib) happen inside the command so ``seisinv --help`` stays
fast and this module always imports.
"""

from __future__ import annotations

from pathlib import Path

import typer

FWI_EXAMPLES = """
Examples:

  seisinv fwi --data test/ --survey openfwi --init preds/ --iters 30 --out preds_fwi/

  seisinv fwi --data test/ --survey openfwi --init smooth --iters 60 --bands 8,15,0 --out fwi_smooth/
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


def register(app: typer.Typer) -> None:
    """Add ``fwi`` to ``app``."""

    @app.command("fwi", epilog=FWI_EXAMPLES)
    def fwi_command(
        data: list[Path] = typer.Option(..., "--data", help="Dataset root(s) with the observed gathers."),
        survey: str = typer.Option(..., "--survey", help="Survey preset name or YAML file."),
        init: str = typer.Option(
            ..., "--init", help="Start: smooth, gradient, or a prediction directory (a network's answer)."
        ),
        out: Path = typer.Option(..., "--out", help="Output prediction directory (created; resumes)."),
        iters: int = typer.Option(30, "--iters", help="Iterations per sample, split over the bands."),
        optimizer: str = typer.Option("adam", "--optimizer", help="adam or lbfgs."),
        lr: float = typer.Option(0.3, "--lr", help="Step size (Adam: logit units; L-BFGS: 1)."),
        misfit: str = typer.Option("l2", "--misfit", help="l2 or normalized (trace-normalised)."),
        bands: str = typer.Option(
            "", "--bands", help="Low-pass corners in Hz, low to high, 0 = full band; e.g. 8,15,0."
        ),
        smooth_grad: float = typer.Option(1.0, "--smooth-grad", help="Gradient smoothing (cells)."),
        time_gain: float = typer.Option(
            0.0, "--time-gain", help="Weight gathers by (t/T)**gain before the misfit (deep arrivals)."
        ),
        depth_power: float = typer.Option(
            0.0, "--depth-power", help="Scale the gradient by ((z+1)/nz)**power."
        ),
        start_smoothing: float = typer.Option(
            0.0, "--start-smoothing", help="Smooth the start by this many metres (0: as given)."
        ),
        shots_per_iter: int = typer.Option(None, "--shots-per-iter", help="Random shots per iteration."),
        estimate_wavelet: bool = typer.Option(
            False, "--estimate-wavelet", help="Estimate the source wavelet from the data."
        ),
        regularization: str = typer.Option("none", "--reg", help="none, tv or tikhonov."),
        reg_weight: float = typer.Option(0.0, "--reg-weight", help="Regularisation weight."),
        prior_weight: float = typer.Option(
            0.0, "--prior-weight", help="Pull toward the start (a network's answer); 0: none."
        ),
        model_coarsen: int = typer.Option(
            1, "--model-coarsen", help="Invert on a grid this many times coarser (interpolated)."
        ),
        coarsen: int = typer.Option(
            None, "--coarsen", help="Simulate on an internal grid N times coarser (e.g. 4 for S&S)."
        ),
        batch_size: int = typer.Option(4, "--batch-size", help="Samples inverted together (Adam)."),
        limit: int = typer.Option(None, "--limit", help="Only the first N samples."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
        overwrite: bool = typer.Option(
            False, "--overwrite", help="--out was made from other data, start or settings: "
            "delete it and start again (default: refuse, naming the difference)."),
    ) -> None:
        """Full-waveform inversion of every sample of --data from --init; writes the refined
        velocity as a prediction directory, per-sample misfit histories (fwi/<id>.json, .csv) and
        convergence.png."""
        from rich.console import Console

        from seisinv.fwi.config import fwi_config
        from seisinv.fwi.job import run_fwi

        config = fwi_config({
            "iters": iters, "optimizer": optimizer, "lr": lr, "misfit": misfit,
            "bands": _bands(bands), "smooth_sigma": smooth_grad, "time_gain": time_gain,
            "depth_power": depth_power,
            "shots_per_iter": shots_per_iter, "estimate_wavelet": estimate_wavelet,
            "regularization": regularization, "reg_weight": reg_weight,
            "prior_weight": prior_weight,
            "model_coarsen": model_coarsen, "batch_size": batch_size, "device": device,
        })
        summary = run_fwi([str(d) for d in data], survey, init, out, config, limit=limit,
                          smooth_sigma_m=start_smoothing, simulation_coarsen=coarsen,
                          progress=progress, overwrite=overwrite)
        Console(stderr=True).print(
            f"fwi: inverted {len(summary.inverted)} sample(s), {len(summary.skipped)} already done, "
            f"{summary.wall_s:.1f} s -> {out} (convergence.png, fwi/<id>.json)"
        )
