"""CLI: ``seisinv generate`` (synthetic datasets, or a family preview PNG) and ``seisinv simulate``
(gathers for velocity maps you already have). Heavy imports stay inside the commands."""

from __future__ import annotations

from pathlib import Path

import typer

from seisinv.errors import SeisinvError

DEFAULT_FAMILIES = "flat,curved,flatfault,curvefault,style,salt"


def _split(names: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in names.split(",") if name.strip())


def _vrange(vmin: float | None, vmax: float | None, survey) -> tuple[float, float] | None:
    if vmin is None and vmax is None:
        return None
    return (survey.vmin if vmin is None else vmin, survey.vmax if vmax is None else vmax)


def _weight_range(text: str) -> tuple[float, float]:
    parts = _split(text)
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise SeisinvError(f"--mix-weight {text!r}: expected LOW,HIGH, e.g. 0.3,0.7") from None
    if not 0.0 <= lo <= hi <= 1.0:
        raise SeisinvError(f"--mix-weight {text!r}: expected 0 <= LOW <= HIGH <= 1")
    return (lo, hi)


def register(app: typer.Typer) -> None:
    """Add ``generate`` and ``simulate`` to ``app``."""

    @app.command("generate")
    def generate(
        out: Path = typer.Option(..., "--out", help="Output folder (or .png with --preview)."),
        survey: str = typer.Option("openfwi", "--survey", help="Survey preset or YAML file."),
        families: str = typer.Option(
            DEFAULT_FAMILIES, "--families",
            help="Comma-separated families, cycled over samples: flat, curved, flatfault, "
            "curvefault, fault (either fault family), style, salt, mix, transform, the OpenFWI "
            "families FlatVel_A ... Style_B, or openfwi (all ten).",
        ),
        n: int = typer.Option(
            1000, "--n", "--num-samples",
            help="Number of samples (--num-samples under torchrun, whose parser takes --n).",
        ),
        seed: int = typer.Option(0, "--seed", help="Run seed; sample i uses (seed, i)."),
        mix_from: Path = typer.Option(
            None, "--mix-from",
            help="Velocity maps (.npy, OpenFWI folder or Speed & Structure folders) that 'mix' "
            "samples blend and 'transform' samples crop and warp; default: fresh maps.",
        ),
        mix_flips: bool = typer.Option(
            True, "--mix-flips/--no-mix-flips",
            help="'mix' flips each map left-right at random first; --no-mix-flips blends "
            "exactly w*V1 + (1-w)*V2.",
        ),
        mix_weight: str = typer.Option(
            "0,1", "--mix-weight",
            help="LOW,HIGH range of the uniform weight w of 'mix' (e.g. 0.3,0.7).",
        ),
        vmin: float = typer.Option(None, "--vmin", help="Lowest velocity (survey units)."),
        vmax: float = typer.Option(None, "--vmax", help="Highest velocity (survey units)."),
        per_file: int = typer.Option(
            500, "--per-file", help="Samples per chunk (per data{k}.npy in the OpenFWI layout)."
        ),
        shard: str = typer.Option(None, "--shard", help="Do part K of N of the chunks: K/N."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        batch: int = typer.Option(None, "--batch", help="Samples per physics call (auto)."),
        workers: str = typer.Option(
            "auto", "--workers",
            help="Processes drawing velocity maps ahead of the physics (0: inline; auto: the "
            "cores the physics leaves free).",
        ),
        preview: str = typer.Option(
            None, "--preview",
            help="Instead of a dataset, draw examples of these families (comma-separated) to "
            "the PNG file --out.",
        ),
        examples: int = typer.Option(4, "--examples", help="Examples per family in a preview."),
        overwrite: bool = typer.Option(
            False, "--overwrite", help="--out holds a run with other arguments: delete it and "
            "start again (default: refuse, naming the difference)."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    ) -> None:
        """Generate a synthetic dataset (velocity families + forward modelling) in the survey's
        native layout, resumable and shardable; or, with --preview, a PNG of family examples."""
        from rich.console import Console

        from seisinv.survey import load_survey

        console = Console(stderr=True)
        the_survey = load_survey(survey)
        if preview:
            from seisinv.geology import expand_families
            from seisinv.geology.preview import preview_families

            path = preview_families(list(expand_families(_split(preview))), the_survey, out,
                                    examples=examples, seed=seed)
            console.print(f"wrote {path}")
            return
        from seisinv.generation import GenerateSpec, Shard, run_generate
        from seisinv.generation.common import rate_text

        spec = GenerateSpec(
            survey=the_survey, families=_split(families), n=n, seed=seed, per_file=per_file,
            vrange=_vrange(vmin, vmax, the_survey),
            mix_from=str(mix_from) if mix_from is not None else None,
            mix_flips=mix_flips, mix_weight=_weight_range(mix_weight),
        )
        from seisinv.generation.pipeline import parse_workers

        report = run_generate(spec, out, device=device, shard=Shard.parse(shard), batch=batch,
                              workers=parse_workers(workers), overwrite=overwrite,
                              progress=progress)
        console.print(
            f"{out}: {report.written} samples written, {report.skipped} already present "
            f"({rate_text(report.written, report.seconds) or 'nothing to do'}); manifest lists "
            f"{report.manifest_rows} of {spec.n}"
        )

    @app.command("simulate")
    def simulate(
        models: Path = typer.Argument(
            ..., help="Velocity maps: .npy (n, *disk shape) or (n, 1, *disk shape) in survey "
            "units, a folder of them, or Speed & Structure sample folder(s)."
        ),
        survey: str = typer.Option("openfwi", "--survey", help="Survey preset or YAML file."),
        out: Path = typer.Option(
            ..., "--out", help="Output .npy (OpenFWI layout) or folder (Speed & Structure)."
        ),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        batch: int = typer.Option(None, "--batch", help="Samples per physics call (auto)."),
        overwrite: bool = typer.Option(
            False, "--overwrite", help="--out was simulated from other maps or another survey: "
            "delete it and start again (default: refuse, naming the difference)."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    ) -> None:
        """Forward-model velocity maps you already have into shot gathers in the survey's layout."""
        from rich.console import Console

        from seisinv.generation import run_simulate
        from seisinv.generation.common import rate_text
        from seisinv.survey import load_survey

        if not models.exists():
            raise SeisinvError(f"{models}: no such file or folder")
        report = run_simulate(models, load_survey(survey), out, device=device, batch=batch,
                              overwrite=overwrite, progress=progress)
        Console(stderr=True).print(
            f"{out}: gathers for {report.written} maps written, {report.skipped} already present "
            f"({rate_text(report.written, report.seconds) or 'nothing to do'})"
        )
