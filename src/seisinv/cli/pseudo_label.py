"""CLI: ``seisinv pseudo-label`` (predicted maps of unlabelled inputs -> a synthetic training set)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add ``pseudo-label`` to ``app``."""

    @app.command("pseudo-label")
    def pseudo_label(
        pred: Path = typer.Option(..., "--pred", help="Prediction directory of the unlabelled inputs."),
        data: Path = typer.Option(..., "--data", help="The inputs that were predicted (sets the ids)."),
        out: Path = typer.Option(..., "--out", help="Output dataset folder (generate layout; resumes)."),
        round_index: int = typer.Option(1, "--round", help="Pseudo-labelling round (part of every id)."),
        survey: str = typer.Option(
            None, "--survey", help="Survey preset or YAML to simulate with (default: the predictions')."
        ),
        per_file: int = typer.Option(500, "--per-file", help="Samples per chunk / stacked file."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        batch: int = typer.Option(None, "--batch", help="Samples per physics call (auto)."),
        copies: int = typer.Option(
            0, "--augment-copies",
            help="Also simulate N map-augmented copies of each prediction (geology 'transform').",
        ),
        seed: int = typer.Option(0, "--seed", help="Seed of the map augmentation."),
    ) -> None:
        """Simulate gathers for predicted maps: self-consistent (gathers, velocity) pairs, marked
        synthetic (never validated on), for the next round's training data."""
        from rich.console import Console

        from seisinv.errors import SeisinvError
        from seisinv.inference.pseudo_label import geology_map_augment, make_pseudo_labels
        from seisinv.survey import load_survey

        if round_index < 1:
            raise SeisinvError(f"--round {round_index}: must be at least 1")
        if per_file < 1 or (batch is not None and batch < 1):
            raise SeisinvError("--per-file and --batch must be at least 1")
        if copies < 0:
            raise SeisinvError(f"--augment-copies {copies}: must be >= 0")
        report = make_pseudo_labels(
            pred, data, load_survey(survey) if survey else None, out, device,
            round_index=round_index, per_file=per_file, batch=batch,
            map_augment=geology_map_augment() if copies else None, copies=copies, seed=seed,
        )
        Console(stderr=True).print(
            f"pseudo-label round {report.round}: {report.written} sample(s) simulated, "
            f"{report.skipped} already done, {report.count} in {out}", markup=False,
        )
