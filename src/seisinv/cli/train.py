"""CLI: ``seisinv train CONFIG [--set key=value ...] [--out RUN_DIR] [--resume | --overwrite]``.

Heavy imports (torch, the training loop) happen inside the command so ``seisinv --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add ``train`` to ``app``."""

    @app.command("train")
    def train_command(
        config: str = typer.Argument(
            None,
            help="Training config: a YAML path or a packaged recipe name (see --list). "
            "Optional with --resume (the run's saved config is used).",
        ),
        overrides: list[str] = typer.Option(
            [],
            "--set",
            help="Override a config key, e.g. --set optimizer.lr=3e-4 "
            "--set model.options.width=0.5 (values parsed as YAML; repeatable).",
        ),
        out: Path = typer.Option(
            None, "--out", help="Run directory (default: runs/<config name>)."
        ),
        resume: bool = typer.Option(
            False, "--resume", help="Continue the run in --out from its last checkpoint."
        ),
        overwrite: bool = typer.Option(
            False, "--overwrite", help="--out holds an earlier run: delete what training wrote "
            "there (checkpoints, config.yaml, metrics.jsonl, tb/, ...) and start again. A folder "
            "with other files is refused, never deleted.",
        ),
        accept_data_change: bool = typer.Option(
            False, "--accept-data-change", help="With --resume: continue even though the data "
            "files changed since the last checkpoint (e.g. copied with new modification times); "
            "without it such a resume is refused, naming what changed.",
        ),
        list_recipes: bool = typer.Option(False, "--list", help="List packaged recipes and exit."),
    ) -> None:
        """Train a velocity model: config + overrides -> run directory with checkpoints.

        Multi-GPU: torchrun --nproc_per_node 4 -m seisinv.cli.main train CONFIG --out RUN
        """
        from rich.console import Console

        from seisinv.errors import ConfigError
        from seisinv.training.config import load_config, recipe_names

        console = Console()
        if list_recipes:
            for name in recipe_names():
                console.print(name)
            return
        if config is None:
            if not (resume and out is not None):
                raise ConfigError(
                    "give a CONFIG (YAML path or recipe name), or --resume --out RUN_DIR"
                )
            config = str(out / "config.yaml")
        cfg = load_config(config, overrides)
        run_dir = out if out is not None else Path("runs") / cfg.name

        from seisinv.runtime import dist_info
        from seisinv.training.trainer import train

        main = dist_info().is_main
        if main:
            action = "resuming" if resume else "training"
            console.print(f"{action} {cfg.name!r} ({cfg.model.name}) -> {run_dir}")
            if cfg.device != "cpu":
                import sys

                import torch

                from seisinv.training.distributed import torchrun_hint

                gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
                hint = torchrun_hint(gpus, sys.argv[1:], dist_info().world_size)
                if hint:
                    console.print(hint, markup=False, highlight=False)
        def echo(line: str) -> None:
            console.print(line, markup=False, highlight=False)

        # train() locks the run folder and checks it (overlap with the data, other files).
        result = train(cfg, run_dir, resume=resume, overwrite=overwrite,
                       accept_data_change=accept_data_change, echo=echo if main else None)
        if main:
            best = (
                ""
                if result.best is None
                else (f", best val {cfg.checkpoint.best_metric} {result.best:.4g}")
            )
            console.print(f"done: {result.step}/{result.total_steps} steps{best}; run in {run_dir}")
