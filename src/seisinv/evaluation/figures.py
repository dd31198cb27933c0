"""Report figures (matplotlib, Agg backend): training curves, velocity comparisons, gathers.

Every function writes one PNG and returns its path. Velocity images put depth down (row 0 at the
top), with axes in metres and colour bars in the survey's velocity units.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from seisinv.survey import Survey


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    from seisinv.io import atomic_open

    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def training_curves(records: list[dict], path: Path, title: str = "training") -> Path | None:
    """Plot every numeric series of ``metrics.jsonl`` records against epoch (or step).

    Series whose name contains "loss" share the first panel (log scale); every other series gets
    its own panel. Returns None when there is nothing numeric to plot.
    """
    x_key = next((k for k in ("epoch", "step") if any(k in r for r in records)), None)
    names: list[str] = []
    for record in records:
        for key, value in record.items():
            if key not in (x_key, "time", "wall_time") and key not in names:
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    names.append(key)
    if not names:
        return None
    losses = [n for n in names if "loss" in n]
    others = [n for n in names if "loss" not in n and n not in ("lr", "step", "epoch")][:5]
    panels = ([losses] if losses else []) + [[n] for n in others]
    plt = _pyplot()
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, series in zip(axes.ravel(), panels, strict=False):
        for name in series:
            points = [(r.get(x_key, i), r[name]) for i, r in enumerate(records) if name in r]
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="." if len(xs) < 40 else None, label=name)
        if series is losses and all(y > 0 for n in series for r in records if n in r for y in [r[n]]):
            ax.set_yscale("log")
        ax.set_xlabel(x_key or "record")
        ax.set_title(", ".join(series) if len(series) < 3 else "losses", fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title)
    return _save(fig, path)


def velocity_comparison(
    survey: Survey,
    predicted: np.ndarray,
    path: Path,
    true: np.ndarray | None = None,
    spread: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """True | predicted | error (| spread) maps side by side, depth axis down.

    Args:
        survey: grid spacing (axes in metres) and velocity range (shared colour scale).
        predicted, true, spread: (nz, nx) in survey units, depth first; true and spread optional.
    """
    plt = _pyplot()
    extent = (0, survey.nx * survey.dx, survey.nz * survey.dz, 0)  # depth increases downwards
    panels = ([("true", true)] if true is not None else []) + [("predicted", predicted)]
    if true is not None:
        panels.append(("error (pred - true)", predicted - true))
    if spread is not None:
        panels.append(("ensemble spread (std)", spread))
    aspect = survey.nz * survey.dz / (survey.nx * survey.dx)
    width = 3.6 if aspect < 2.0 else 2.2
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), width * min(aspect, 3) + 0.8))
    axes = np.atleast_1d(axes)
    velocity_image = None
    for ax, (label, image) in zip(axes, panels, strict=True):
        if label.startswith("error"):
            limit = float(np.abs(image).max()) or 1.0
            im = ax.imshow(image, extent=extent, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
            fig.colorbar(im, ax=ax, shrink=0.8, label=survey.units)
        elif label.startswith("ensemble"):
            im = ax.imshow(image, extent=extent, cmap="magma", aspect="auto")
            fig.colorbar(im, ax=ax, shrink=0.8, label=survey.units)
        else:
            velocity_image = ax.imshow(
                image, extent=extent, cmap="viridis", vmin=survey.vmin, vmax=survey.vmax, aspect="auto"
            )
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("x (m)")
    axes[0].set_ylabel("depth (m)")
    velocity_axes = [ax for ax, (label, _) in zip(axes, panels, strict=True) if label in ("true", "predicted")]
    fig.colorbar(velocity_image, ax=velocity_axes, shrink=0.8, label=f"velocity ({survey.units})")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def gathers_figure(survey: Survey, gathers: np.ndarray, path: Path, title: str = "") -> Path:
    """One panel per shot: (shots, time, receivers) records, time down, clipped at the 99th pct."""
    plt = _pyplot()
    gathers = np.asarray(gathers, dtype=np.float32)
    clip = float(np.percentile(np.abs(gathers), 99)) or 1.0
    n_shots = gathers.shape[0]
    fig, axes = plt.subplots(1, n_shots, figsize=(1.9 * n_shots, 3.4), sharey=True)
    axes = np.atleast_1d(axes)
    extent = (0, gathers.shape[2], survey.duration, 0)
    for shot, ax in enumerate(axes):
        ax.imshow(gathers[shot], extent=extent, cmap="gray", vmin=-clip, vmax=clip, aspect="auto")
        ax.set_title(f"shot {shot}", fontsize=8)
        ax.set_xlabel("receiver")
    axes[0].set_ylabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def metric_bars(rows: dict[str, float], path: Path, label: str) -> Path:
    """A horizontal bar chart of one metric per prediction directory (e.g. MAE of model vs baselines)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 0.5 + 0.45 * len(rows)))
    names = list(rows)
    ax.barh(names, [rows[n] for n in names], color="tab:blue")
    ax.invert_yaxis()
    ax.set_xlabel(label)
    for i, name in enumerate(names):
        ax.text(rows[name], i, f" {rows[name]:.4g}", va="center", fontsize=8)
    return _save(fig, path)
