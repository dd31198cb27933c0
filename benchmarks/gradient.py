"""Cost of a velocity gradient (forward + adjoint), every-step vs sparse gradient sampling.

deepwave can add the gradient contribution every ``model_gradient_sampling_interval`` steps
instead of every step (``Simulation.gradient_interval``; seisinv's default None picks the largest
interval that samples the wavefields above twice 3x the wavelet's peak frequency). This script
times one misfit gradient (a blurred start against data from a generated ``curvefault`` map) with
the every-step setting (1), a few fixed intervals and the default, in the same run, and prints
each gradient's relative L2 difference from the every-step one.

Usage::

    python benchmarks/gradient.py                        # OpenFWI batch of 4, S&S one sample
    python benchmarks/gradient.py --surveys openfwi --repeats 5
    python benchmarks/gradient.py --device cuda
"""

from __future__ import annotations

import argparse
import sys

from timing import timed


def measure(survey, intervals, batch: int, repeats: int, device) -> None:
    import torch

    from seisinv.fwi.precondition import gaussian_smooth
    from seisinv.geology import generate_velocity
    from seisinv.physics import simulate
    from seisinv.physics.grid import gradient_interval_for

    true = torch.from_numpy(generate_velocity("curvefault", batch, survey, seed=7)).float()
    observed = simulate(true, survey, device=device)
    blur = 20.0 / survey.dz  # 20 m Gaussian: a start close to the truth
    start = gaussian_smooth(true.double(), blur).float().to(device)
    reference, baseline = None, None
    print(f"{survey.name}: batch {batch}, grid {survey.nz} x {survey.nx}, {survey.nt} samples, "
          f"device {device}, {torch.get_num_threads()} thread(s), best of {repeats}")
    print(f"  {'interval':>10} {'s / gradient':>13} {'speed-up':>9} {'rel. diff':>10}")
    for interval in intervals:
        setting = survey.replace(simulation=survey.simulation.model_copy(
            update={"gradient_interval": interval}))
        times = []
        for _ in range(repeats):
            v = start.clone().requires_grad_(True)
            _, seconds = timed(
                lambda v=v, setting=setting:
                (simulate(v, setting, device=device) - observed).pow(2).sum().backward(),
                device)
            times.append(seconds)
        grad = v.grad.double().cpu()
        reference = grad if reference is None else reference
        best = min(times)
        baseline = best if baseline is None else baseline
        label = str(interval) if interval is not None else (
            f"auto={gradient_interval_for(setting, survey.dt * _time_factor(setting))}")
        diff = float((grad - reference).norm() / reference.norm())
        print(f"  {label:>10} {best:13.2f} {baseline / best:8.2f}x {diff:10.1e}")


def _time_factor(survey) -> int:
    from seisinv.physics.grid import plan_grid

    return plan_grid(survey, survey.vmax * survey.to_mps).time_factor


def main(argv: list[str] | None = None) -> int:
    import torch

    from seisinv.runtime import resolve_device
    from seisinv.survey import OPENFWI, SPEED_STRUCTURE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--surveys", default="openfwi,speed-structure")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cases = {"openfwi": (OPENFWI, (1, 2, 4, 8, None), 4),
             "speed-structure": (SPEED_STRUCTURE, (1, 4, 8, None), 1)}
    for name in args.surveys.split(","):
        survey, intervals, batch = cases[name.strip()]
        measure(survey, intervals, batch, args.repeats, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
