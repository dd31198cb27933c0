"""Narrowest absorbing layer for the openfwi preset, and whether deepwave sub-steps in time.

For each PML width it simulates the full OpenFWI preset (70 x 70, 1000 steps, 5 shots) on the
same seeded maps (one per family) and prints the relative L2 distance from
``openfwi_reference`` (OpenFWI's own damped scheme, 120-cell sponge) and from the 20-cell
default, the padded grid's cell count and the CPU time per sample (1 thread). It also prints
deepwave's resolved time-step ratio (``out.info.step_ratio``; 1 = no internal sub-stepping)
for the presets.

Usage::

    python benchmarks/boundary.py                 # widths 20 16 12 10 8 6 4, 6 families
    python benchmarks/boundary.py --quick         # widths 20 10 6 4, 3 families
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from seisinv.geology import velocity_sample
from seisinv.physics import openfwi_reference, simulate
from seisinv.survey import OPENFWI, SPEED_STRUCTURE, Survey

FAMILIES = ("flat", "curved", "flatfault", "curvefault", "style", "salt")


def relative_l2(reference: np.ndarray, other: np.ndarray) -> float:
    return float(np.linalg.norm(reference - other) / np.linalg.norm(reference))


def with_width(survey: Survey, width: int) -> Survey:
    """``survey`` with a PML of ``width`` cells (the sweep starts from the preset's other
    settings, whatever its own width)."""
    return survey.replace(simulation=survey.simulation.model_copy(update={"boundary_width": width}))


def step_ratio(survey: Survey) -> str:
    """deepwave's resolved internal step ratio for one sample of ``survey`` (short record)."""
    import deepwave

    from seisinv.physics import forward

    seen = {}
    real = deepwave.scalar

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        info = getattr(out, "info", None)
        seen["ratio"] = getattr(info, "step_ratio", "n/a (deepwave without RunInfo)")
        return out

    short = survey.replace(nt=min(survey.nt, 200))
    v = np.full((1, *short.velocity_shape), short.vmax, np.float32)
    deepwave.scalar = spy
    try:
        forward.simulate(v, short, device="cpu")
    finally:
        deepwave.scalar = real
    return str(seen.get("ratio"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--widths", type=int, nargs="+", default=None)
    parser.add_argument("--cache", type=Path, default=None,
                        help=".npy file keeping the reference gathers between runs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    widths = args.widths or ((20, 10, 6, 4) if args.quick else (20, 16, 12, 10, 8, 6, 4))
    families = FAMILIES[::2] if args.quick else FAMILIES
    print(f"deepwave internal step ratio: openfwi {step_ratio(OPENFWI)}, speed-structure "
          f"{step_ratio(SPEED_STRUCTURE)} (1 = the recording/internal dt, no sub-stepping)")
    maps = np.stack([velocity_sample(f, OPENFWI, 100 + i) for i, f in enumerate(families)])
    started = time.perf_counter()
    if args.cache is not None and args.cache.exists():
        reference = np.load(args.cache)
    else:
        reference = np.stack([openfwi_reference(torch.from_numpy(m[None]), OPENFWI)[0].numpy()
                              for m in maps])
        if args.cache is not None:
            np.save(args.cache, reference)
    print(f"openfwi_reference: {len(maps)} maps ({', '.join(families)}) in "
          f"{time.perf_counter() - started:.0f} s")
    print(f"{'width':>5} {'padded grid':>12} {'s/sample':>9} {'vs reference (max / mean)':>27} "
          f"{f'vs width {widths[0]} (max)':>18}")
    base = None  # the first width listed is the comparison column's reference
    for width in widths:
        survey = with_width(OPENFWI, width)
        simulate(maps[:1], survey.replace(nt=50), device="cpu")  # warm-up
        started = time.perf_counter()
        out = simulate(maps, survey, device="cpu").numpy()
        seconds = (time.perf_counter() - started) / len(maps)
        base = out if base is None else base
        errors = [relative_l2(r, o) for r, o in zip(reference, out, strict=True)]
        to_base = max(relative_l2(b, o) for b, o in zip(base, out, strict=True))
        side = 70 + 2 * width + OPENFWI.simulation.accuracy
        print(f"{width:>5} {side:>5} x {side:<4} {seconds:>9.3f} "
              f"{max(errors) * 100:>18.3f}% / {np.mean(errors) * 100:.3f}% {to_base * 100:>17.3f}%")


if __name__ == "__main__":
    main()
