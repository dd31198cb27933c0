"""Ensemble methods and post-processing steps scored on held-out synthetic "predictions".

Truth: ``--n`` OpenFWI-grid maps per family (``flat``, ``curved``, ``flatfault``) from
``seisinv.geology``. Members: five imitation predictors with different, known error types (a
smoothed map, a biased map, two noisy maps, one heavily smoothed and biased), NOT trained
networks: the figures show what each method does with members whose errors differ, not what it
will gain on a real model zoo. Weights are fitted on one half of the samples and every method is
scored (MAE, m/s) on the other half; each post-processing step is then applied to the mean
ensemble and scored on the same held-out half (bias fitted on the fit half).

    python benchmarks/ensemble_methods.py --n 40
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.ndimage import gaussian_filter

from seisinv.geology import generate_velocity
from seisinv.inference import ensemble
from seisinv.inference.postprocess import build_chain, fit_specs, parse_post
from seisinv.survey import OPENFWI

FAMILIES = ("flat", "curved", "flatfault")
POSTS = ("clip", "round", "snap_levels:levels=8", "bias", "lowpass:cutoff=0.5",
         "gaussian:sigma=1", "depth_trend", "max_gradient:down=300")


def members_for(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(5, n, nz, nx) imitation predictions with different error types."""
    smooth = np.stack([gaussian_filter(t, 1.5, mode="nearest") for t in truth])
    blurred = np.stack([gaussian_filter(t, 4.0, mode="nearest") for t in truth])
    return np.stack([
        smooth,
        truth + 80.0,
        truth + rng.normal(0, 120, truth.shape),
        truth + gaussian_filter(rng.normal(0, 400, truth.shape), (0, 2, 2)),
        blurred - 150.0,
    ])


def mae(pred, truth) -> float:
    return float(np.abs(pred - truth).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="maps per family")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    truth = np.concatenate([generate_velocity(f, args.n, OPENFWI, args.seed) for f in FAMILIES])
    truth = truth.astype(np.float64)
    members = members_for(truth, np.random.default_rng(args.seed))
    order = np.random.default_rng(args.seed + 1).permutation(len(truth))
    fit, held = order[: len(order) // 2], order[len(order) // 2:]

    print(f"{len(truth)} maps ({', '.join(FAMILIES)}), fit on {len(fit)}, scored on {len(held)}; "
          "5 imitation members")
    for k in range(len(members)):
        print(f"  member {k}: held-out MAE {mae(members[k][held], truth[held]):8.1f}")
    rows = []
    runs = [(name, {}) for name in ensemble.METHODS] + [("hill_climb", {"init": 5})]
    for name, options in runs:
        started = time.perf_counter()
        method = ensemble.METHODS[name]
        weights = method.fit(members[:, fit], truth[fit], "mae", **options) if method.fit else None
        seconds = time.perf_counter() - started
        blend = np.stack([ensemble.combine(members[:, i], name, weights)[0] for i in held])
        shown = "" if weights is None else "[" + ", ".join(f"{w:.2f}" for w in weights) + "]"
        label = name + "".join(f" {k}={v}" for k, v in options.items())
        rows.append((label, mae(blend, truth[held]), seconds, shown))
    print(f"{'method':18s} {'MAE':>8s} {'fit s':>7s}  weights")
    for name, score, seconds, shown in rows:
        print(f"{name:18s} {score:8.1f} {seconds:7.2f}  {shown}")

    mean_fit = members[:, fit].mean(axis=0)
    mean_held = members[:, held].mean(axis=0)
    print(f"\npost-processing of the mean ensemble (held-out MAE {mae(mean_held, truth[held]):.1f})")
    for text in POSTS:
        specs = fit_specs([parse_post(text)], mean_fit, truth[fit], OPENFWI)
        chain = build_chain(specs, OPENFWI)
        score = mae(np.stack([chain(v) for v in mean_held]), truth[held])
        print(f"  {text:24s} {score:8.1f}")


if __name__ == "__main__":
    main()
