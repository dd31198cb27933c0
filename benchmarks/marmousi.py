"""Marmousi example: FWI of the decimated Marmousi model from a smoothed start, on the CPU.

The model is ``../shared/data/marmousi_vp_1601x401_f32_kms.bin`` (raw little-endian float32, 1601
horizontal x 401 depth samples, x-major, km/s, 7.5 m spacing): the IFP Marmousi model (Versteeg,
1994, "The Marmousi experience: Velocity model determination on a synthetic complex data set",
The Leading Edge 13(9)), as distributed with Devito's example data (devitocodes/data). It is
anti-alias smoothed and taken every 8th sample (60 m) onto the bundled survey
``src/seisinv/surveys/marmousi-small.yaml`` (51 x 201 cells, 11 shots, 101 receivers, 5 Hz Ricker,
4 ms x 751 samples).

The observed data are simulated with a different absorbing boundary than the inversion (a
40-cell PML against 20 cells), so the inversion is not an exact inverse crime. (A different
stencil order is too different at 4.7 cells per wavelength: the true model itself would misfit
by ~15 %.) The start is the true model smoothed with a 600 m Gaussian (water layer kept).
The script prints the data misfit and model error before and after and writes
``docs/img/marmousi.png`` (true, start, inverted, and both errors) and the convergence curve
``docs/img/marmousi_convergence.png``.

Usage::

    python benchmarks/marmousi.py                  # 3 bands x 12 Adam iterations (~3-6 min)
    python benchmarks/marmousi.py --quick          # 6 iterations, a smoke run
    python benchmarks/marmousi.py --iters 90 --optimizer lbfgs

Skips cleanly (exit 0, one line) when ``../shared/data`` is absent.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODEL_FILE = ROOT.parent / "shared" / "data" / "marmousi_vp_1601x401_f32_kms.bin"
SURVEY_FILE = ROOT / "src" / "seisinv" / "surveys" / "marmousi-small.yaml"
FULL_SHAPE = (1601, 401)  # (horizontal, depth) at 7.5 m, x-major on disk
DECIMATION = 8  # 7.5 m -> 60 m
WATER_KMS = 1.5
START_SMOOTHING_M = 600.0


def load_marmousi(path: Path = MODEL_FILE) -> np.ndarray:
    """The full model as ``(nz, nx) = (401, 1601)`` float32 km/s, depth first."""
    raw = np.fromfile(path, dtype="<f4")
    if raw.size != FULL_SHAPE[0] * FULL_SHAPE[1]:
        raise SystemExit(f"{path}: {raw.size} values, expected {FULL_SHAPE[0] * FULL_SHAPE[1]}")
    return raw.reshape(FULL_SHAPE).T.copy()


def decimate(model: np.ndarray, factor: int) -> np.ndarray:
    """Anti-alias (Gaussian, sigma = factor / 2 cells) and keep every ``factor``-th sample."""
    import torch

    from seisinv.fwi.precondition import gaussian_smooth

    smoothed = gaussian_smooth(torch.from_numpy(model)[None].double(), factor / 2)[0].numpy()
    return smoothed[::factor, ::factor].astype(np.float32)


def smoothed_start(true: np.ndarray, survey, sigma_m: float) -> np.ndarray:
    """The true model smoothed by ``sigma_m`` metres below the water bottom; water kept."""
    from seisinv.fwi import smooth_model

    start = smooth_model(survey, true, sigma_m)
    water = np.isclose(true, WATER_KMS, atol=1e-3)
    water_rows = np.cumprod(water.all(axis=1)).astype(bool)  # the top rows that are all water
    start[water_rows] = true[water_rows]
    return start


def figure(true, start, inverted, survey, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    extent = (0, (survey.nx - 1) * survey.dx / 1000, (survey.nz - 1) * survey.dz / 1000, 0)
    fig, axes = plt.subplots(3, 2, figsize=(12, 7.2), constrained_layout=True)
    panels = [
        (true, "true (km/s)"), (None, ""),
        (start, f"start: smoothed ({START_SMOOTHING_M:.0f} m), MAE {np.abs(start - true).mean():.3f}"),
        (start - true, "start - true (km/s)"),
        (inverted, f"FWI, MAE {np.abs(inverted - true).mean():.3f}"),
        (inverted - true, "FWI - true (km/s)"),
    ]
    for ax, (image, label) in zip(axes.flat, panels, strict=True):
        if image is None:
            ax.axis("off")
            ax.text(0.02, 0.5, title, fontsize=10, va="center", wrap=True)
            continue
        is_error = "-" in label.split("(")[0]
        kwargs = ({"cmap": "RdBu_r", "vmin": -1.0, "vmax": 1.0} if is_error
                  else {"cmap": "viridis", "vmin": float(true.min()), "vmax": float(true.max())})
        shown = ax.imshow(image, extent=extent, aspect="auto", **kwargs)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("x (km)")
        ax.set_ylabel("depth (km)")
        fig.colorbar(shown, ax=ax, shrink=0.85)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=36, help="total iterations over all bands")
    parser.add_argument("--bands", default="2,3.5,0", help="low-pass corners in Hz, 0 = full")
    parser.add_argument("--optimizer", default="adam", choices=("adam", "lbfgs"))
    parser.add_argument("--lr", type=float, default=0.15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="6 iterations: a smoke run")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "marmousi.png")
    args = parser.parse_args(argv)
    if not MODEL_FILE.exists():
        print(f"skip: {MODEL_FILE} not found (../shared/data is not present)")
        return 0

    import torch

    from seisinv.fwi import FwiConfig, invert, l2_misfit
    from seisinv.fwi.plot import convergence_plot
    from seisinv.physics import simulate
    from seisinv.survey import load_survey

    torch.set_num_threads(args.threads)
    survey = load_survey(SURVEY_FILE)
    true = decimate(load_marmousi(), DECIMATION)
    if true.shape != survey.velocity_shape:
        raise SystemExit(f"decimated model {true.shape} != survey grid {survey.velocity_shape}")
    start = smoothed_start(true, survey, START_SMOOTHING_M)
    observed_survey = survey.replace(
        simulation=survey.simulation.model_copy(update={"boundary_width": 40}))
    t0 = time.perf_counter()
    observed = simulate(true[None], observed_survey, device="cpu")
    print(f"observed data: {tuple(observed.shape)} in {time.perf_counter() - t0:.1f} s "
          f"(40-cell PML; the inversion uses {survey.simulation.boundary_width} cells)")
    bands = tuple(float(b) for b in args.bands.split(","))
    config = FwiConfig(iters=6 if args.quick else args.iters, optimizer=args.optimizer,
                       lr=args.lr, bands=bands, smooth_sigma=1.0, device="cpu")
    started = time.perf_counter()
    result = invert(observed, start[None], survey, config, true_velocity=true[None])
    wall = time.perf_counter() - started
    inverted = result.velocity[0]
    truth_misfit = float(l2_misfit(simulate(true[None], survey, device="cpu"), observed)[0])
    mae_start, mae_end = np.abs(start - true).mean(), np.abs(inverted - true).mean()
    rel = lambda v: float(np.linalg.norm(v - true) / np.linalg.norm(true))  # noqa: E731
    lines = [
        f"Marmousi {survey.nz}x{survey.nx} at {survey.dx:g} m, {survey.n_shots} shots, "
        f"{survey.frequency:g} Hz; {config.optimizer}, {config.iters} iterations, "
        f"bands {list(bands)} Hz, {wall:.0f} s on the CPU (shared, 1 thread)",
        f"data misfit (full band, L2/energy): start {result.misfit_start[0]:.4g} -> "
        f"FWI {result.misfit_end[0]:.4g} (true model: {truth_misfit:.3g})",
        f"model MAE km/s: start {mae_start:.4f} -> FWI {mae_end:.4f} "
        f"({100 * (1 - mae_end / mae_start):.0f}% lower); relative L2: "
        f"{rel(start):.4f} -> {rel(inverted):.4f}",
    ]
    print("\n".join(lines))
    figure(true, start, inverted, survey, args.out, "\n".join(lines).replace("; ", ";\n"))
    history = {"misfit": result.misfit[0].tolist(), "band_hz": result.band_hz.tolist(),
               "model_mae": result.model_mae[0].tolist()}
    convergence_plot([history], args.out.with_name(args.out.stem + "_convergence.png"))
    print(f"wrote {args.out} and {args.out.with_name(args.out.stem + '_convergence.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
