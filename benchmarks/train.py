"""Training throughput: samples per second of one optimiser step, per model, on CPU or GPU.

Times exactly what ``seisinv train`` runs per step (``forward_backward`` + ``optimizer_step`` with
AdamW, gradient clipping and, on CUDA, autocast) on random gathers shaped like each recipe's
network input. Data loading is excluded (it overlaps with compute in worker processes).

    python benchmarks/train.py                          # tiny models, CPU
    python benchmarks/train.py --size full --device cuda --batch 16
    python benchmarks/train.py --recipes tiny-openfwi openfwi-unet --steps 5

Prints one row per recipe: model, input shape, parameters, batch, seconds per step, samples/s.
"""

from __future__ import annotations

import argparse
import time

import torch


def benchmark(
    recipe: str, size: str, device: torch.device, batch: int, steps: int, warmup: int
) -> dict:
    """Time ``steps`` optimiser steps of ``recipe``'s model on random input (after ``warmup``)."""
    from seisinv.data import build_pipeline
    from seisinv.models import count_parameters, create_model, size_options
    from seisinv.survey import load_survey
    from seisinv.training.config import load_config
    from seisinv.training.losses import Loss, LossContext
    from seisinv.training.optim import build_optimizer, resolve_precision
    from seisinv.training.steps import forward_backward, optimizer_step

    config = load_config(recipe)
    survey = load_survey(config.data.survey)
    options = dict(config.model.options)
    if size == "tiny" and recipe != "tiny-openfwi":
        options = size_options(config.model.name, "tiny")
    pipeline = build_pipeline(config.data.transforms, survey)
    shape = pipeline.output_shape()
    torch.manual_seed(0)
    model = create_model(config.model.name, survey, **options).to(device).train()
    optimizer = build_optimizer(model, config.optimizer)
    amp_dtype = resolve_precision(config.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    loss = Loss(config.loss, LossContext(survey, pipeline))
    gathers = torch.randn(batch, *shape)
    velocity = survey.vmin + (survey.vmax - survey.vmin) * torch.rand(batch, survey.nz, survey.nx)
    batches = [{"gathers": gathers, "velocity": velocity}]

    def step() -> None:
        forward_backward(model, batches, loss, device, amp_dtype, scaler)
        optimizer_step(model, optimizer, scaler, config.clip_grad_norm)

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    return {
        "recipe": recipe,
        "model": config.model.name,
        "input": "x".join(map(str, shape)),
        "params_M": count_parameters(model) / 1e6,
        "batch": batch,
        "precision": str(amp_dtype).replace("torch.", "") if amp_dtype else "fp32",
        "s_per_step": seconds,
        "samples_per_s": batch / seconds,
    }


def main() -> None:
    from seisinv.runtime import resolve_device
    from seisinv.training.config import recipe_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="*", default=None, help="default: every packaged recipe")
    parser.add_argument(
        "--size",
        choices=("tiny", "full"),
        default="tiny",
        help="tiny: the models' recommended tiny options (CPU); full: the recipe's",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1: steadiest on a shared 2-core machine)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    recipes = args.recipes or recipe_names()
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    header = (
        f"{'recipe':32s} {'model':13s} {'input':>12s} {'params M':>9s} {'batch':>5s} "
        f"{'prec':>5s} {'s/step':>8s} {'samples/s':>10s}"
    )
    print(header)
    for recipe in recipes:
        row = benchmark(recipe, args.size, device, args.batch, args.steps, args.warmup)
        print(
            f"{row['recipe']:32s} {row['model']:13s} {row['input']:>12s} {row['params_M']:9.2f} "
            f"{row['batch']:5d} {row['precision']:>5s} {row['s_per_step']:8.3f} "
            f"{row['samples_per_s']:10.1f}"
        )


if __name__ == "__main__":
    main()
