"""Velocity maps per second per family, per core, for both survey presets.

Each family draws ``--n`` maps on one thread (``OMP_NUM_THREADS=1``, set before numpy loads);
the table gives maps per CPU-second of this process (what one core yields, little affected by
other load on a shared machine) and per wall-second (affected). ``--legacy`` adds rows for
``style`` and ``salt`` with seisinv 0.1.0's spatial smoothing (``scipy.ndimage.gaussian_filter``
for the random fields and the blurred layering) swapped back in, measured in the same run.

Usage::

    python benchmarks/maps.py                     # both surveys, all families, --legacy rows
    python benchmarks/maps.py --survey speed-structure --families style,salt --n 20
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


@contextmanager
def legacy_smoothing():
    """Swap seisinv 0.1.0's spatial Gaussian filters back into ``style`` and ``salt``."""
    from scipy.ndimage import gaussian_filter

    from seisinv.geology import salt, style

    def smooth_field(rng, shape, corr_z, corr_x):
        side = max(shape)
        noise = rng.standard_normal(shape)
        sigma = (max(corr_z * side, 0.5), max(corr_x * side, 0.5))
        field = gaussian_filter(noise, sigma=sigma, mode="wrap")
        field -= field.mean()
        return field / field.std()

    def blur(image, sigma):
        return gaussian_filter(image, sigma=sigma, mode="nearest")

    saved = salt.smooth_field, style.smooth_field, style.gaussian_blur
    salt.smooth_field = style.smooth_field = smooth_field
    style.gaussian_blur = blur
    try:
        yield
    finally:
        salt.smooth_field, style.smooth_field, style.gaussian_blur = saved


def rate(family: str, survey, n: int, seed: int) -> tuple[float, float]:
    from seisinv.geology import generate_velocity

    generate_velocity(family, 1, survey, seed + 1)  # warm-up (imports, FFT plans)
    cpu, wall = time.process_time(), time.perf_counter()
    generate_velocity(family, n, survey, seed)
    return n / (time.process_time() - cpu), n / (time.perf_counter() - wall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--survey", default="openfwi,speed-structure")
    parser.add_argument("--families", default=None, help="comma-separated (default: all)")
    parser.add_argument("--n", type=int, default=None,
                        help="maps per family (default 200 openfwi, 20 speed-structure)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-legacy", action="store_true", help="skip the 0.1.0 rows")
    args = parser.parse_args(argv)

    from seisinv.geology import family_names
    from seisinv.survey import load_survey

    print(f"one thread, {os.cpu_count()} CPUs visible, load average "
          f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("| survey | family | maps/CPU-s | maps/wall-s |\n|---|---|---:|---:|")
    for name in args.survey.split(","):
        survey = load_survey(name.strip())
        n = args.n or (200 if survey.nz * survey.nx < 10_000 else 20)
        families = args.families.split(",") if args.families else family_names()
        for family in families:
            cpu, wall = rate(family, survey, n, args.seed)
            print(f"| {survey.name} {survey.nz}x{survey.nx} | {family} | {cpu:.1f} | {wall:.1f} |",
                  flush=True)
        if not args.no_legacy:
            with legacy_smoothing():
                for family in ("style", "salt"):
                    if family in families:
                        cpu, wall = rate(family, survey, max(4, n // 4), args.seed)
                        print(f"| {survey.name} {survey.nz}x{survey.nx} | {family} (0.1.0 "
                              f"smoothing) | {cpu:.1f} | {wall:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
