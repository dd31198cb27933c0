"""Forward-modelling speed: seisinv.physics.simulate (deepwave) against devito, both presets.

For each preset (``openfwi``, ``speed-structure``) on the same seeded velocity maps it prints

- samples/s and survey-grid cell updates/s (``nz * nx * nt * shots`` per sample) of
  ``simulate`` on the CPU with 1 thread, 2 threads, and two 1-thread processes side by side
  (OpenFWI only), and on CUDA when available;
- devito's acoustic solver (4th order in space, 2nd in time, OpenFWI-style damping layer,
  one shot per ``Operator.apply``, single thread) on the same model, with its relative L2
  difference from ``simulate`` (after the best lag within +-3 samples); devito is the optional
  ``bench`` extra (``pip install devito``), and a clear skip line is printed without it;
- for Speed & Structure, the speedup of the preset's coarse internal grid over the full 1 m
  grid and its relative L2 error against it.

Usage::

    python benchmarks/forward.py            # 8 OpenFWI samples, 1 full-length S&S sample
    python benchmarks/forward.py --quick    # fewer samples, S&S record cut to 2001 steps
    python benchmarks/forward.py --batches 1 4 16 64   # OpenFWI samples/s per batch size
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import time

import numpy as np
import torch
from timing import timed

from seisinv.geology import generate_velocity
from seisinv.physics import simulate, survey_wavelet
from seisinv.survey import OPENFWI, SPEED_STRUCTURE, Simulation, Survey

FAMILY = "curvefault"


def relative_l2(reference: np.ndarray, other: np.ndarray) -> float:
    return float(np.linalg.norm(reference - other) / np.linalg.norm(reference))


def timed_simulate(velocity: np.ndarray, survey: Survey, device: str) -> tuple[float, np.ndarray]:
    """Seconds for one batched ``simulate`` call (after a warm-up) and its gathers."""
    simulate(velocity[:1], survey.replace(nt=min(survey.nt, 50)), device=device)
    gathers, seconds = timed(lambda: simulate(velocity, survey, device=device), device)
    return seconds, gathers.cpu().numpy()


def report(label: str, survey: Survey, samples: int, seconds: float) -> None:
    updates = samples * survey.n_shots * survey.nz * survey.nx * survey.nt
    print(
        f"  {label:<34} {samples / seconds:8.3f} samples/s  {updates / seconds / 1e9:7.3f} G "
        f"cell-updates/s  ({seconds:.2f} s for {samples})"
    )


def _worker(args) -> float:
    velocity, survey = args
    torch.set_num_threads(1)
    return timed_simulate(velocity, survey, "cpu")[0]


def cpu_runs(velocity: np.ndarray, survey: Survey, processes: bool) -> np.ndarray:
    gathers = None
    for threads in (1, 2):
        torch.set_num_threads(threads)
        seconds, gathers_t = timed_simulate(velocity, survey, "cpu")
        gathers = gathers_t if gathers is None else gathers
        report(f"cpu, {threads} thread(s)", survey, len(velocity), seconds)
    torch.set_num_threads(1)
    if processes and len(velocity) >= 2:
        half = len(velocity) // 2
        parts = [(velocity[:half], survey), (velocity[half : 2 * half], survey)]
        with mp.get_context("spawn").Pool(2) as pool:
            # Timed inside the workers (after imports and a warm-up), both running at once.
            seconds = max(pool.map(_worker, parts))
        report("cpu, 2 processes x 1 thread", survey, 2 * half, seconds)
    return gathers


def devito_forward(velocity_mps: np.ndarray, survey: Survey, nbl: int = 120) -> np.ndarray:
    """One sample's gathers (shots, nt, receivers) from devito: OpenFWI's damped scheme."""
    from devito import Eq, Function, Grid, Operator, SparseTimeFunction, TimeFunction, solve

    v = np.pad(velocity_mps, nbl, mode="edge").astype(np.float32)
    shape = v.shape
    extent = ((shape[0] - 1) * survey.dz, (shape[1] - 1) * survey.dx)
    grid = Grid(shape=shape, extent=extent, origin=(-nbl * survey.dz, -nbl * survey.dx))
    vel = Function(name="vel", grid=grid, space_order=4)
    vel.data[:] = v
    damp = Function(name="damp", grid=grid, space_order=0)
    a = (nbl - 1) * survey.dx
    ramp = 3.0 * v.min() * math.log(1e7) / (2 * a) * (np.arange(nbl) * survey.dx / a) ** 2
    profile = np.zeros(shape, np.float32)
    for axis in (0, 1):
        edge = np.zeros(shape[axis], np.float32)
        edge[:nbl], edge[-nbl:] = ramp[::-1], ramp
        profile = np.maximum(profile, np.expand_dims(edge, 1 - axis))
    damp.data[:] = profile
    u = TimeFunction(name="u", grid=grid, time_order=2, space_order=4)
    dt = grid.stepping_dim.spacing
    stencil = Eq(u.forward, solve(u.dt2 - vel**2 * u.laplace + damp * u.dt, u.forward))
    src = SparseTimeFunction(name="src", grid=grid, npoint=1, nt=survey.nt)
    rec = SparseTimeFunction(name="rec", grid=grid, npoint=survey.n_receivers, nt=survey.nt)
    rec.coordinates.data[:] = np.stack(
        [np.full(survey.n_receivers, survey.receiver_z), survey.receiver_x], axis=1
    )
    src.data[:, 0] = survey_wavelet(survey).numpy()
    # p += (v dt)^2 s at the source: the same convention as simulate.
    op = Operator(
        [
            stencil,
            src.inject(field=u.forward, expr=src * vel**2 * dt**2),
            rec.interpolate(expr=u),
        ]
    )
    out = np.zeros(survey.gather_shape, np.float32)
    for shot, x in enumerate(survey.source_x):
        u.data[:] = 0
        src.coordinates.data[:] = [[survey.source_z, x]]
        op.apply(time_m=0, time_M=survey.nt - 2, dt=survey.dt)
        out[shot] = rec.data
    return out


def best_lag_error(reference: np.ndarray, other: np.ndarray) -> tuple[float, int]:
    errors = []
    for lag in range(-3, 4):
        shifted = np.roll(other, lag, axis=-2)
        errors.append((relative_l2(reference[..., 3:-3, :], shifted[..., 3:-3, :]), lag))
    return min(errors)


def devito_run(velocity: np.ndarray, survey: Survey, gathers: np.ndarray) -> None:
    try:
        import devito  # noqa: F401
    except ImportError:
        print("  devito: SKIPPED (not installed; pip install devito, the 'bench' extra)")
        return
    import logging

    logging.getLogger("devito").setLevel(logging.WARNING)
    v = velocity[0] * survey.to_mps
    devito_forward(v, survey.replace(nt=50))  # compile outside the timing
    start = time.perf_counter()
    out = devito_forward(v, survey)
    seconds = time.perf_counter() - start
    report("devito (damping 120 cells, 1 thread)", survey, 1, seconds)
    error, lag = best_lag_error(out, gathers[0])
    # At 1 m the 120-cell sponge is ~1 wavelength thick: its reflections dominate there.
    print(f"  devito vs simulate: relative L2 {error:.4f} at lag {lag:+d} samples")


def speed_structure_coarse(velocity: np.ndarray, survey: Survey, full: Survey) -> np.ndarray:
    """Time the full 1 m grid against the coarse grid; return the full-resolution gathers."""
    if survey.simulation.coarsen == 1:
        survey = survey.replace(simulation=Simulation(coarsen=4, accuracy=8))
    torch.set_num_threads(1)
    t_full, reference = timed_simulate(velocity, full, "cpu")
    t_coarse, coarse = timed_simulate(velocity, survey, "cpu")
    report("cpu 1 thread, full 1 m grid", full, len(velocity), t_full)
    sim = survey.simulation
    report(
        f"cpu 1 thread, coarsen {sim.coarsen} acc {sim.accuracy}", survey, len(velocity), t_coarse
    )
    print(
        f"  coarse-grid speedup {t_full / t_coarse:.1f}x, relative L2 error "
        f"{relative_l2(reference, coarse):.4f} against the full-resolution run"
    )
    return reference


def internal_updates(survey: Survey) -> int:
    """Cell updates one sample really costs: padded internal grid x internal steps x shots."""
    from seisinv.physics.grid import coarse_shape, plan_grid

    plan = plan_grid(survey, survey.vmax * survey.to_mps)
    nz, nx = coarse_shape(survey, plan.coarsen)
    top, bottom, left, right = plan.pad
    pad = 2 * survey.simulation.boundary_width + survey.simulation.accuracy
    steps = (survey.nt - 1) // plan.time_factor + 2
    return (nz + top + bottom + pad) * (nx + left + right + pad) * steps * survey.n_shots


def batch_sweep(batches: list[int], device: str, widths: tuple[int, ...] = (8, 20)) -> None:
    """OpenFWI samples/s per batch size for the preset's PML and the former 20-cell one, side by
    side (alternating, so load drifts hit both), with survey- and internal-grid updates/s."""
    torch.set_num_threads(1)
    velocity = generate_velocity(FAMILY, max(batches), OPENFWI, seed=0)
    surveys = {w: OPENFWI.replace(simulation=OPENFWI.simulation.model_copy(
        update={"boundary_width": w})) for w in widths}
    print(f"== openfwi per batch, {device}, 1 thread; PML widths {widths} (preset: "
          f"{OPENFWI.simulation.boundary_width})")
    for batch in batches:
        for width, survey in surveys.items():
            seconds, _ = timed_simulate(velocity[:batch], survey, device)
            per_sample = internal_updates(survey)
            report(f"batch {batch}, PML {width}", survey, batch, seconds)
            print(f"  {'':<34} {per_sample * batch / seconds / 1e9:7.3f} G internal "
                  f"cell-updates/s ({per_sample / 1e6:.1f} M per sample)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few samples, short S&S record")
    parser.add_argument("--samples", type=int, default=None, help="OpenFWI samples (default 8)")
    parser.add_argument("--batches", type=int, nargs="+", default=None,
                        help="only time OpenFWI simulate at these batch sizes")
    args = parser.parse_args()
    if args.batches:
        batch_sweep(args.batches, "cuda" if torch.cuda.is_available() else "cpu")
        return
    n_openfwi = args.samples or (4 if args.quick else 8)
    devices = ["cuda"] if torch.cuda.is_available() else []

    print(f"== openfwi: {n_openfwi} '{FAMILY}' samples, 70 x 70, 1000 steps, 5 shots")
    velocity = generate_velocity(FAMILY, n_openfwi, OPENFWI, seed=0)
    gathers = cpu_runs(velocity, OPENFWI, processes=True)
    for device in devices:
        report(device, OPENFWI, n_openfwi, timed_simulate(velocity, OPENFWI, device)[0])
    devito_run(velocity, OPENFWI, gathers)

    nt = 2001 if args.quick else SPEED_STRUCTURE.nt
    preset = SPEED_STRUCTURE.replace(nt=nt)
    full = preset.replace(simulation=preset.simulation.model_copy(update={"coarsen": 1}))
    print(f"== speed-structure: 1 '{FAMILY}' sample, 1259 x 300, {nt} steps, 5 shots")
    velocity = generate_velocity(FAMILY, 1, SPEED_STRUCTURE, seed=0)
    full_gathers = speed_structure_coarse(velocity, preset, full)
    for device in devices:
        report(f"{device}, preset", preset, 1, timed_simulate(velocity, preset, device)[0])
        report(f"{device}, full 1 m grid", full, 1, timed_simulate(velocity, full, device)[0])
    devito_run(velocity, full, full_gathers)


if __name__ == "__main__":
    main()
