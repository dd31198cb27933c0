"""FWI on the Speed & Structure survey (300 x 1259 cells at 1 m, 5 shots x 10001 samples), CPU.

What it measures, on generated maps (``seisinv.geology``, family ``--family``):

- the cost of one FWI iteration (forward + adjoint on the preset's coarse internal grid: 4 m,
  8th order) against one plain forward simulation of the same sample, and the full 1 m grid's
  forward time for scale;
- what FWI does to a start that is close to the truth but blurred, a stand-in for a network's
  answer (the truth smoothed by a Gaussian of ``--start-smoothing`` metres): MAPE and MAE before
  and after, and the data misfit's fall.

The observed gathers are simulated on the full 1 m grid (``coarsen = 1``), the inversion uses the
preset's 4 m internal grid (``coarsen = 4``), so the inversion does not enjoy an inverse crime;
the two grids' gathers differ by ~0.9 % (``benchmarks/forward.py``).

Usage::

    python benchmarks/fwi_speed_structure.py                 # 2 samples x 24 iterations, ~15 min
    python benchmarks/fwi_speed_structure.py --quick         # 1 sample x 3 iterations
    python benchmarks/fwi_speed_structure.py --device cuda   # where a GPU is available
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from timing import timed


def run(args) -> int:
    import torch

    from seisinv.fwi import FwiConfig, invert
    from seisinv.fwi.initial import smooth_model
    from seisinv.geology import generate_velocity
    from seisinv.metrics import mae_per_sample, mape_per_sample
    from seisinv.physics import simulate
    from seisinv.runtime import resolve_device
    from seisinv.survey import SPEED_STRUCTURE

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    survey = SPEED_STRUCTURE
    full_grid = survey.replace(simulation=survey.simulation.model_copy(update={"coarsen": 1}))
    n, iters = (1, 3) if args.quick else (args.samples, args.iters)
    truth = generate_velocity(args.family, n, survey, seed=args.seed).astype(np.float32)

    observed, full_s = timed(lambda: simulate(truth, full_grid, device=device), device)
    _, coarse_s = timed(lambda: simulate(truth, survey, device=device), device)
    start = np.stack([smooth_model(survey, v, args.start_smoothing) for v in truth])
    config = FwiConfig(iters=iters, optimizer="adam", lr=args.lr,
                       bands=(8.0, 15.0, 0.0) if iters >= 3 else (),
                       misfit="l2", smooth_sigma=4.0, batch_size=n, device=str(device),
                       prior_weight=args.prior_weight)
    result, fwi_s = timed(lambda: invert(observed, start, survey, config), device)

    mape0, mape1 = (100 * mape_per_sample(m, truth) for m in (start, result.velocity))
    mae0, mae1 = (1000 * mae_per_sample(m, truth) for m in (start, result.velocity))
    per_iter = fwi_s / iters
    print(f"device {device}, {args.threads} torch thread(s), {n} {args.family} sample(s), "
          f"{iters} Adam iterations, start = truth smoothed by {args.start_smoothing:.0f} m")
    print(f"forward, full 1 m grid:     {full_s / n:8.2f} s/sample")
    print(f"forward, 4 m internal grid: {coarse_s / n:8.2f} s/sample")
    print(f"FWI iteration (4 m grid):   {per_iter / n:8.2f} s/sample "
          f"= {per_iter / coarse_s:.2f} x a forward")
    for i in range(n):
        print(f"sample {i}: MAPE {mape0[i]:.2f}% -> {mape1[i]:.2f}%, MAE {mae0[i]:.1f} -> "
              f"{mae1[i]:.1f} m/s, misfit x{result.misfit_end[i] / result.misfit_start[i]:.3f}")
    print(f"mean: MAPE {mape0.mean():.2f}% -> {mape1.mean():.2f}% "
          f"({100 * (mape1.mean() / mape0.mean() - 1):+.1f} %)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 sample, 3 iterations")
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--iters", type=int, default=24)
    parser.add_argument("--family", default="curvefault")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start-smoothing", type=float, default=40.0, help="metres")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--prior-weight", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
