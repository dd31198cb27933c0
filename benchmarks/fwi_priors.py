"""FWI with priors (issue 15): MAE before/after per family, from blurred truths or a network.

What it does, on the OpenFWI survey (70 x 70 cells at 10 m, 5 shots x 1000 samples):

- test maps: generated maps of each family (``seisinv.geology``: flat, curved, flatfault,
  curvefault, style) and real OpenFWI maps (``../shared/data/openfwi_real_train_maps.npz``:
  FlatVel_A, CurveVel_A; training maps of OpenFWI, any of them is a fair test map for physics);
- observed data from another implementation than the inversion's (``--observed``):
  ``openfwi`` (default, the realistic case): ``seisinv.physics.openfwi_reference``, OpenFWI's own
  scheme (120-cell replicated, damped sponge, periodic stencil), which made the OpenFWI / Kaggle
  data; ``eighth-order``: deepwave with an 8th-order stencil and a 40-cell PML (a harsher stress
  test of the stencil); ``same``: the inversion's own simulator (the inverse crime); optionally
  with Gaussian noise (``--noise``: standard deviation as a fraction of each sample's data RMS).
  Each row prints the misfit of the *true* map against the observed data (the floor the
  modelling error sets) beside the start's;
- starts: ``blurred`` (the truth smoothed by a Gaussian of ``--sigma`` cells, the blur a good
  network leaves) or ``network`` (a tiny InversionNet, width 0.25, trained here for
  ``--train-steps`` Adam steps on ``--train-samples`` generated maps of the same families:
  a weak network, stated as such);
- the inversion: ``seisinv.fwi.invert`` with ``optimizer lbfgs`` and ``prior auto`` (the family
  label is given, as a family classifier would give it), ``--iters`` L-BFGS iterations;
- ``--survey speed-structure``: one generated map per family on Speed & Structure's survey
  (300 x 1259 cells at 1 m), observed on a 2 m internal grid, inverted on the preset's 4 m
  grid, a few iterations, with the time they took;
- the cost of the pieces a Gauss-Newton step would need (``--costs``): one float64 gradient
  (forward + adjoint) against one Born (linearised) forward of ``deepwave.scalar_born``.

Prints one row per family: MAE before -> after (m/s), the cut, seconds and simulations per
sample, the prior used. Hardware: whatever it runs on (it prints torch's thread count).

Usage::

    nice python benchmarks/fwi_priors.py --quick                  # 1 flat + 1 curved, 10 iters
    nice python benchmarks/fwi_priors.py --samples 1 --iters 40   # every family, blurred start
    nice python benchmarks/fwi_priors.py --start network --samples 1 --iters 40
    nice python benchmarks/fwi_priors.py --noise 0.05 --samples 1 --iters 40
    nice python benchmarks/fwi_priors.py --costs
    nice python benchmarks/fwi_priors.py --survey speed-structure --families curvefault --iters 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REAL_MAPS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / \
    "openfwi_real_train_maps.npz"
REAL_FAMILIES = {"FlatVel_A": "flat", "CurveVel_A": "curved"}


OBSERVED = ("openfwi", "eighth-order", "same")


def observed_gathers(truth, survey, kind: str, device: str, inversion):
    """``(n, shots, nt, receivers)`` float64 observed data of ``truth`` (m/s) for ``--observed``;
    ``inversion`` is the survey the inversion simulates with (``same`` uses it)."""
    import torch

    from seisinv.physics import openfwi_reference, simulate

    if kind == "openfwi":
        return openfwi_reference(truth, survey).to(device=device, dtype=torch.float64)
    if kind == "eighth-order":
        survey = survey.replace(simulation=survey.simulation.model_copy(
            update={"accuracy": 8, "boundary_width": 40}))
    return simulate(truth, inversion if kind == "same" else survey, device=device,
                    dtype=torch.float64)


def test_maps(args, survey) -> list[tuple[str, str, str, np.ndarray]]:
    """``[(label, family, source, (n, nz, nx) m/s), ...]``."""
    from seisinv.geology.sampling import velocity_sample

    sets = []
    for family in [f for f in args.families.split(",") if f]:
        maps = np.stack([velocity_sample(family, survey, args.seed + 1000 + i)
                         for i in range(args.samples)])
        sets.append((family, family, "generated", maps))
    real = Path(args.real_maps)
    if args.real > 0 and real.exists():
        with np.load(real) as data:
            for name, family in REAL_FAMILIES.items():
                if name in data and name in args.real_names.split(","):
                    maps = data[name][args.real_start: args.real_start + args.real]
                    sets.append((name, family, "real OpenFWI", maps))
    elif args.real > 0:
        print(f"({real} not found: real maps skipped)")
    return sets


def conventions(simulated, observed) -> str:
    """Amplitude, timing and residual of one sample's ``(shots, nt, receivers)`` simulated
    gathers against observed ones: the least-squares amplitude factor, the integer time lag
    (-3..3 samples) that fits best, and the relative L2 residual."""
    import torch

    scale = float((simulated * observed).sum() / (simulated * simulated).sum())
    residual = {lag: float((torch.roll(simulated, lag, dims=1) - observed).norm()
                           / observed.norm()) for lag in range(-3, 4)}
    lag = min(residual, key=residual.get)
    return f"amplitude x{scale:.4f}, best lag {lag:+d} samples, relative L2 {residual[0]:.2%}"


def train_tiny_network(args, survey, families: list[str]):
    """A tiny InversionNet trained briefly on generated data (float32, CPU)."""
    import torch

    from seisinv.geology.sampling import velocity_sample
    from seisinv.models.registry import create_model
    from seisinv.physics import simulate

    started = time.perf_counter()
    torch.manual_seed(args.seed)
    maps = np.stack([velocity_sample(families[i % len(families)], survey, args.seed + i)
                     for i in range(args.train_samples)]).astype(np.float32)
    gathers = torch.cat([simulate(maps[i:i + 16], survey, device="cpu")
                         for i in range(0, len(maps), 16)])
    scale = float(gathers.abs().amax())
    model = create_model("inversionnet", survey, width=0.25)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    target = torch.from_numpy(maps)
    model.train()
    for _ in range(args.train_steps):
        idx = torch.randint(0, len(maps), (16,))
        loss = (model(gathers[idx] / scale) - target[idx]).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    print(f"tiny InversionNet (width 0.25): {args.train_samples} generated maps, "
          f"{args.train_steps} steps, final batch L1 {float(loss.detach()):.0f} m/s, "
          f"{time.perf_counter() - started:.0f} s")

    def predict(observed: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.as_tensor(observed, dtype=torch.float32) / scale).numpy()

    return predict


def run_speed_structure(args) -> int:
    """One Speed & Structure sample: the priors on its 4 m internal grid, CPU time."""
    import torch

    from seisinv.fwi import FwiConfig, invert
    from seisinv.fwi.precondition import gaussian_smooth
    from seisinv.geology.sampling import velocity_sample
    from seisinv.physics import simulate
    from seisinv.survey import SPEED_STRUCTURE

    torch.set_num_threads(args.threads)
    survey = SPEED_STRUCTURE
    dtype = torch.float32 if args.precision == "float32" else torch.float64
    # Observed on a 2 m internal grid, inversion on the preset's 4 m grid: other numerics.
    fine = survey.replace(simulation=survey.simulation.model_copy(update={"coarsen": 2}))
    for family in [f for f in args.families.split(",") if f]:
        truth = velocity_sample(family, survey, args.seed + 1000)[None].astype(np.float64)
        started = time.perf_counter()
        observed = simulate(truth, fine, device=args.device, dtype=dtype)
        observed_s = time.perf_counter() - started
        start = gaussian_smooth(torch.from_numpy(truth), args.sigma).numpy()
        config = FwiConfig(iters=args.iters, prior=args.prior, precision=args.precision,
                           prior_strength=args.prior_strength, device=args.device)
        started = time.perf_counter()
        result = invert(observed, start, survey, config, true_velocity=truth, families=[family])
        wall = time.perf_counter() - started
        before = float(np.abs(start - truth).mean()) * survey.to_mps  # survey units: km/s
        after = float(np.abs(result.velocity - truth).mean()) * survey.to_mps
        print(f"speed-structure {family}: prior {result.prior[0]}, start blurred {args.sigma:g} "
              f"cells, {args.precision}, observed on the 2 m grid ({observed_s:.0f} s), inverted "
              f"on the 4 m grid: MAE {before:.1f} -> {after:.1f} m/s in {result.iterations[0]} "
              f"L-BFGS iterations, {result.evaluations[0]} simulations, {wall:.0f} s "
              f"({wall / max(1, result.evaluations[0]):.0f} s per simulation + gradient), "
              f"torch threads {torch.get_num_threads()}", flush=True)
    return 0


def run(args) -> int:
    import torch

    from seisinv.fwi import FwiConfig, invert
    from seisinv.fwi.invert import fwi_forward, inversion_survey
    from seisinv.fwi.precondition import gaussian_smooth
    from seisinv.fwi.priors import choose_prior, lateral_variation
    from seisinv.physics.misfit import MISFITS
    from seisinv.survey import OPENFWI

    torch.set_num_threads(args.threads)
    survey = OPENFWI
    sets = test_maps(args, survey)
    predict = None
    if args.start == "network":
        predict = train_tiny_network(args, survey, sorted({f for _, f, _, _ in sets}))
    if args.optimizer == "adam":  # the pre-issue-15 default loop, for comparison
        config = FwiConfig(iters=args.iters, optimizer="adam", device=args.device,
                           batch_size=args.samples)
    else:
        config = FwiConfig(iters=args.iters, optimizer="lbfgs", prior=args.prior,
                           prior_strength=args.prior_strength, device=args.device,
                           batch_size=args.samples, gauss_newton=args.gauss_newton,
                           rounds=args.rounds, precision=args.precision,
                           boundary_width=args.boundary_width, physics=args.physics)
    numerics = {"openfwi": "openfwi_reference (OpenFWI's sponge scheme)",
                "eighth-order": "deepwave 8th order, 40-cell PML",
                "same": "the inversion's own simulator"}[args.observed]
    print(f"torch threads {torch.get_num_threads()}, device {args.device}; observed: {numerics}, "
          f"float64{f', noise {args.noise:g} x RMS' if args.noise else ''}; "
          + (f"inversion: {survey.simulation.accuracy}th order, "
             f"{max(survey.simulation.boundary_width, args.boundary_width)}-cell PML, "
             if args.physics == "deepwave" else "inversion: OpenFWI's scheme, ")
          + f"{args.precision}, L-BFGS {args.iters} iterations in {args.rounds} round(s) "
          f"(+ up to {args.gauss_newton} Gauss-Newton steps for tv1d), "
          f"prior {args.prior}; start {args.start}"
          + (f" (Gaussian sigma {args.sigma:g} cells)" if args.start == "blurred" else ""))
    header = (f"{'maps':<12} {'source':<13} {'n':>2} {'prior':<6} {'rule':<6} {'MAE start':>9} "
              f"{'MAE end':>8} {'cut':>6} {'s/sample':>9} {'sims':>5} {'misfit truth':>12} "
              f"{'start':>8} {'end':>8}")
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(args.seed)
    for label, family, source, truth in sets:
        truth = truth.astype(np.float64)
        observed = observed_gathers(truth, survey, args.observed, args.device,
                                    inversion_survey(survey, config))
        if args.noise:
            rms = observed.pow(2).flatten(1).mean(1).sqrt().reshape(-1, 1, 1, 1)
            noise = torch.from_numpy(rng.standard_normal(tuple(observed.shape)))
            observed = observed + args.noise * rms * noise.to(observed)
        if predict is None:
            start = gaussian_smooth(torch.from_numpy(truth), args.sigma).numpy()
        else:
            start = predict(observed.float().cpu().numpy()).astype(np.float64)
        start = np.clip(start, survey.vmin, survey.vmax)
        rule = [choose_prior(s)[0] for s in start]
        started = time.perf_counter()
        result = invert(observed, start, survey, config, true_velocity=truth,
                        families=[family] * len(truth))
        wall = time.perf_counter() - started
        with torch.no_grad():  # the floor the modelling error (and noise) sets
            at_truth = fwi_forward(survey, config, torch.device(args.device))(
                torch.from_numpy(truth).to(args.device), None)
            floor = MISFITS.get(config.misfit)(at_truth, observed)
        before = np.abs(start - truth).reshape(len(truth), -1).mean(1)
        after = np.abs(result.velocity - truth).reshape(len(truth), -1).mean(1)
        used = result.prior[0] if result.prior else "adam"
        sims = np.mean(result.evaluations) if result.evaluations else args.iters
        print(f"{label:<12} {source:<13} {len(truth):>2} {used:<6} "
              f"{'/'.join(sorted(set(rule))):<6} {before.mean():9.1f} {after.mean():8.1f} "
              f"{before.mean() / max(after.mean(), 1e-9):5.1f}x {wall / len(truth):9.1f} "
              f"{sims:5.0f} {float(floor.mean()):12.2e} {result.misfit_start.mean():8.2e} "
              f"{result.misfit_end.mean():8.2e}", flush=True)
        if args.verbose:
            for b in range(len(truth)):
                print(f"    sample {b}: MAE {before[b]:.1f} -> {after[b]:.1f}, lateral variation "
                      f"of the start {lateral_variation(start[b]):.3f}, "
                      f"stop {result.stop[b] if result.stop else 'iterations'}; observed vs "
                      f"simulated at the truth: {conventions(at_truth[b], observed[b])}")
    if args.costs:
        gauss_newton_costs(survey, args.device)
        deepwave = precision_costs(survey, args.device, args.boundary_width)
        physics_costs(survey, args.device, args.boundary_width, deepwave)
    return 0


def gauss_newton_costs(survey, device: str) -> None:
    """Time one float64 gradient of the misfit against one Born forward (deepwave.scalar_born)."""
    import warnings

    import deepwave
    import torch

    from seisinv.physics import simulate
    from seisinv.physics.grid import plan_grid
    from seisinv.physics.wavelet import survey_wavelet

    v = torch.full((1, survey.nz, survey.nx), 3000.0, dtype=torch.float64, requires_grad=True)
    started = time.perf_counter()
    simulate(v, survey, device=device, dtype=torch.float64).pow(2).sum().backward()
    gradient_s = time.perf_counter() - started
    with torch.no_grad():
        started = time.perf_counter()
        simulate(v, survey, device=device, dtype=torch.float64)
        forward_s = time.perf_counter() - started
    plan = plan_grid(survey, survey.vmax)
    shots = survey.n_shots
    src = torch.as_tensor(plan.source_positions).round().long().unsqueeze(1)
    rec = torch.as_tensor(plan.receiver_positions).round().long().unsqueeze(0).expand(shots, -1, -1)
    amplitudes = survey_wavelet(survey).double().reshape(1, 1, -1).expand(shots, 1, -1)
    w = survey.simulation.boundary_width
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        deepwave.scalar_born(v.detach()[0], [survey.dz, survey.dx], survey.dt,
                             scatter=torch.ones_like(v.detach()[0]),
                             source_amplitudes=amplitudes.contiguous(),
                             source_locations=src, receiver_locations=rec.contiguous(),
                             accuracy=survey.simulation.accuracy, pml_width=w,
                             pml_freq=survey.frequency, max_vel=survey.vmax)
        born_s = time.perf_counter() - started
    print(f"float64 costs, one OpenFWI sample ({device}): forward {forward_s:.2f} s, gradient "
          f"(forward + adjoint) {gradient_s:.2f} s, Born forward J.dv {born_s:.2f} s. "
          f"A Gauss-Newton step with k CG iterations needs k (J.dv + J^T.r) ~ "
          f"{(born_s + gradient_s) / gradient_s:.1f} k gradients; an L-BFGS iteration ~1.1.")


def physics_costs(survey, device: str, width: int, deepwave: dict) -> None:
    """Seconds per forward and per misfit gradient of OpenFWI's scheme (``physics openfwi``,
    120-cell sponge), float64 and float32, one OpenFWI sample, medians of 3, against deepwave's
    (``deepwave``: ``precision_costs``' timings with a ``width``-cell PML, same sample size)."""
    import torch

    from seisinv.fwi import FwiConfig
    from seisinv.fwi.invert import fwi_forward
    from seisinv.geology.sampling import velocity_sample

    truth = torch.from_numpy(velocity_sample("flat", survey, 1000)[None].astype(np.float64))
    forward = fwi_forward(survey, FwiConfig(physics="openfwi"), torch.device(device))
    for dtype in (torch.float64, torch.float32):
        forward_s, gradient_s = [], []
        for _ in range(3):
            v = truth.to(device=device, dtype=dtype).requires_grad_(True)
            began = time.perf_counter()
            with torch.no_grad():
                forward(v, None)
            forward_s.append(time.perf_counter() - began)
            began = time.perf_counter()
            forward(v, None).pow(2).sum().backward()
            gradient_s.append(time.perf_counter() - began)
        (df, dg), of, og = deepwave[dtype], np.median(forward_s), np.median(gradient_s)
        print(f"physics costs, one OpenFWI sample ({device}, {str(dtype)[6:]}, medians of 3): "
              f"deepwave ({max(width, survey.simulation.boundary_width)}-cell PML) forward "
              f"{df:.2f} s, gradient {dg:.2f} s; openfwi (120-cell sponge) forward {of:.2f} s, "
              f"gradient {og:.2f} s; openfwi / deepwave gradient {og / dg:.1f}x")


def precision_costs(survey, device: str, width: int) -> dict:
    """Seconds per forward and per misfit gradient in float64 and in float32 simulation (the
    ``mixed`` precision: float32 wavefields inside a float64 misfit), and how far the float32
    gradient is from the float64 one (relative L2), on a generated flat map from a blurred start.
    Returns ``{dtype: (forward s, gradient s)}`` (medians of 3)."""
    import torch

    from seisinv.fwi.precondition import gaussian_smooth
    from seisinv.geology.sampling import velocity_sample
    from seisinv.physics import simulate
    from seisinv.physics.misfit import l2_misfit

    survey = survey.replace(simulation=survey.simulation.model_copy(
        update={"boundary_width": max(width, survey.simulation.boundary_width)}))
    truth = torch.from_numpy(velocity_sample("flat", survey, 1000)[None].astype(np.float64))
    observed = simulate(truth, survey, device=device, dtype=torch.float64)
    start = gaussian_smooth(truth, 3.0)
    grads, rows, timings = {}, [], {}
    for dtype in (torch.float64, torch.float32):
        forward_s, gradient_s = [], []
        for _ in range(3):
            v = start.clone().requires_grad_(True)
            began = time.perf_counter()
            with torch.no_grad():
                simulate(v.to(dtype), survey, device=device, dtype=dtype)
            forward_s.append(time.perf_counter() - began)
            began = time.perf_counter()
            simulated = simulate(v.to(dtype), survey, device=device, dtype=dtype).double()
            (grad,) = torch.autograd.grad(l2_misfit(simulated, observed).sum(), v)
            gradient_s.append(time.perf_counter() - began)
        grads[dtype] = grad
        timings[dtype] = (np.median(forward_s), np.median(gradient_s))
        rows.append(f"{str(dtype)[6:]} forward {timings[dtype][0]:.2f} s, gradient "
                    f"{timings[dtype][1]:.2f} s")
    difference = float((grads[torch.float32] - grads[torch.float64]).norm()
                       / grads[torch.float64].norm())
    print(f"simulation precision, one OpenFWI sample ({device}, {survey.simulation.boundary_width}"
          f"-cell PML, medians of 3): {'; '.join(rows)}; float32 gradient vs float64: "
          f"{difference:.1e} relative L2")
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="flat + curved, 1 sample, 10 iters")
    parser.add_argument("--families", default="flat,curved,flatfault,curvefault,style")
    parser.add_argument("--real", type=int, default=1, help="real OpenFWI maps per family")
    parser.add_argument("--real-start", type=int, default=0, help="index of the first real map")
    parser.add_argument("--real-maps", default=str(REAL_MAPS))
    parser.add_argument("--real-names", default=",".join(REAL_FAMILIES))
    parser.add_argument("--samples", type=int, default=1, help="generated maps per family")
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument("--start", choices=("blurred", "network"), default="blurred")
    parser.add_argument("--sigma", type=float, default=3.0, help="blur of the start, cells")
    parser.add_argument("--noise", type=float, default=0.0, help="noise std / data RMS")
    parser.add_argument("--prior", default="auto")
    parser.add_argument("--prior-strength", type=float, default=None)
    parser.add_argument("--gauss-newton", type=int, default=20, help="steps for tv1d samples")
    parser.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs",
                        help="adam: the first-order loop with its defaults, for comparison")
    parser.add_argument("--train-samples", type=int, default=160)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--costs", action="store_true",
                        help="time gradient vs Born forward, float64 vs float32 simulation")
    parser.add_argument("--observed", choices=OBSERVED, default="openfwi",
                        help="observed data: OpenFWI's scheme (openfwi_reference), deepwave 8th "
                        "order with a 40-cell PML, or the inversion's own simulator")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--survey", choices=("openfwi", "speed-structure"), default="openfwi")
    parser.add_argument("--precision", choices=("float64", "mixed", "float32"),
                        default="float64")
    parser.add_argument("--rounds", type=int, default=1, help="L-BFGS restarts")
    parser.add_argument("--physics", choices=("deepwave", "openfwi"), default="deepwave",
                        help="the inversion's forward model (openfwi: OpenFWI's own scheme)")
    parser.add_argument("--boundary-width", type=int, default=20,
                        help="absorbing layer of the inversion, cells")
    args = parser.parse_args(argv)
    if args.quick:
        args.families, args.real, args.samples, args.iters = "flat,curved", 0, 1, 10
    if args.survey == "speed-structure":
        return run_speed_structure(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
