"""Host-device synchronisations per training step, and loader samples/s per worker, per recipe.

For every packaged recipe (or ``--recipes``), on random samples written in the recipe's survey
layout to a temporary folder:

- **syncs**: trains ``--steps`` optimiser steps with ``logging.every_steps = --every`` inside
  ``seisinv.training.syncs.SyncCounter`` and prints the synchronisations made from the start of
  one step to the start of the next (``lr_at`` is called once at the start of each step). The
  target is 0 between logging steps and 1 at a logging step (one read of loss, terms, gradient
  norm and non-finite count); the last step (end of run: checkpoint, validation) is not shown.
  On CUDA the count is CUDA's own (``torch.cuda.set_sync_debug_mode``); on a CPU it counts host
  reads of tensor values outside torch's own code (what would synchronise on a GPU), which
  also counts the sampler's per-epoch permutation (a host tensor) at epoch boundaries. Recipes
  with a ``flip`` augmentation are measured again with ``device_flip=true`` (the GPU default):
  the flip's ``simulate`` call then runs in the loop, with deepwave's own input checks.
- **loader**: samples/s of the training DataLoader (reading, augmentation, transforms, collate)
  with 0 (main process), 1 and 2 workers, over ``--samples`` samples, and that rate divided by
  the number of workers.

The model is the recipe's own at ``--size full`` or a small variant at ``--size tiny`` (the
default: the loop, not the network, makes the synchronisations). Usage::

    python benchmarks/train_syncs.py                          # every recipe, tiny models, CPU
    python benchmarks/train_syncs.py --recipes openfwi-unet --size full --device cuda
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from seisinv.data.writers import write_sample_folder, write_stacked
from seisinv.survey import load_survey
from seisinv.training.config import load_config, recipe_names


def write_data(root: Path, survey, samples: int) -> Path:
    """``samples`` random samples (smooth velocities in range, white-noise gathers)."""
    rng = np.random.default_rng(0)
    z = np.linspace(0, 1, survey.nz)[None, :, None]
    span = survey.vmax - survey.vmin
    velocity = (survey.vmin + span * (0.2 + 0.6 * z)
                + 0.05 * span * rng.uniform(-1, 1, (samples, 1, survey.nx))).astype(np.float32)
    gathers = rng.standard_normal((samples, *survey.gather_shape), dtype=np.float32)
    if survey.layout == "openfwi":
        write_stacked(root / "FlatVel_A" / "data" / "data1.npy", gathers, velocity, survey)
    else:
        for i in range(samples):
            write_sample_folder(root, f"s{i:03d}", gathers[i], velocity[i], survey)
    return root


def recipe_config(name: str, data: Path, args, extra=()):
    overrides = [
        f"data.train=[{data}]", "data.val=[]", "folds.val_fold=null",
        f"steps={args.steps}", f"logging.every_steps={args.every}", "logging.progress=false",
        "logging.tensorboard=false", f"batch_size={args.batch}", "accumulate=1",
        f"device={args.device}", "workers=1", "checkpoint.history=false", *extra,
    ]
    config = load_config(name, overrides)
    if args.size == "tiny":
        from seisinv.models import MODEL_SIZES, size_options

        if config.model.name in MODEL_SIZES:
            options = {**config.model.options, **size_options(config.model.name, "tiny")}
            from seisinv.models import model_options

            known = model_options(config.model.name)
            options = {k: v for k, v in options.items() if k in known}
            config = config.model_copy(update={"model": config.model.model_copy(
                update={"options": options})})
    return config


def count_syncs(config, run_dir: Path, device: str) -> tuple[int, list[int], list[str]]:
    from seisinv.training import trainer
    from seisinv.training.syncs import SyncCounter

    marks: list[int] = []
    counter = SyncCounter(device, keep_sites=1000)
    original = trainer.lr_at

    def marked(*a, **k):
        marks.append(counter.count)
        return original(*a, **k)

    trainer.lr_at = marked
    try:
        with counter:
            trainer.train(config, run_dir)
    finally:
        trainer.lr_at = original
    per_step = np.diff(marks).tolist()
    sites = sorted(set(counter.where[marks[0]:marks[-1]]))
    return marks[0], per_step, sites


def loader_rate(config, workers: int, samples: int) -> float:
    from seisinv.data import make_loader
    from seisinv.training.data import build_data
    from seisinv.training.distributed import EpochSampler

    data = build_data(config)
    sampler = EpochSampler(len(data.train), seed=0, with_epoch=True)
    loader = make_loader(data.train, config.batch_size, workers=workers, sampler=sampler,
                         persistent=True)
    iterator = iter(loader)
    next(iterator)  # start-up (worker processes, memory maps) is not the steady rate
    seen, tic = 0, time.perf_counter()
    for batch in iterator:
        seen += len(batch["id"])
    seconds = time.perf_counter() - tic
    return seen / seconds if seen else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="*", default=None)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--every", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, nargs="*", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads, "
          f"models {args.size}, batch {args.batch}, logging every {args.every} steps")
    for name in args.recipes or recipe_names():
        survey = load_survey(load_config(name).data.survey)
        with tempfile.TemporaryDirectory() as tmp:
            data = write_data(Path(tmp) / "data", survey, args.samples)
            config = recipe_config(name, data, args)
            setup, per_step, sites = count_syncs(config, Path(tmp) / "run", args.device)
            logging_steps = [s for i, s in enumerate(per_step, 1) if i % args.every == 0]
            between = [s for i, s in enumerate(per_step, 1) if i % args.every != 0]
            print(f"\n{name} ({config.model.name}, augment "
                  f"{[a['name'] if isinstance(a, dict) else a for a in config.data.augment]})")
            print(f"  syncs per step 1..{len(per_step)}: {per_step}  (set-up before step 1: "
                  f"{setup})")
            print(f"  between logging steps: {max(between, default=0)} max; at a logging step: "
                  f"{max(logging_steps, default=0)} max")
            for site in sites[:5]:
                print(f"    {site}")
            flips = [a for a in config.data.augment if isinstance(a, dict) and a["name"] == "flip"]
            if flips:
                flip_config = recipe_config(name, data, args, ("device_flip=true",))
                _, flip_steps, flip_sites = count_syncs(flip_config, Path(tmp) / "run-flip",
                                                        args.device)
                print(f"  with device_flip=true: syncs per step {flip_steps}")
                for site in sorted(set(flip_sites))[:3]:
                    print(f"    {site}")
            loader_config = recipe_config(name, data, args, ("steps=1",))
            for workers in args.workers:
                rate = loader_rate(loader_config, workers, args.samples)
                per_worker = rate / max(1, workers)
                print(f"  loader workers={workers}: {rate:7.1f} samples/s "
                      f"({per_worker:6.1f} per worker)")


if __name__ == "__main__":
    main()
