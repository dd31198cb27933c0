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


def _series(records: list[dict]) -> dict[str, list[tuple[float, float]]]:
    """Numeric series of log records: name -> [(x, y)], x = step (else epoch, else line number).

    Records with a ``kind`` ("train", "val") name their series ``kind/key``; nested values
    (per-family dicts) and bookkeeping keys are skipped.
    """
    x_key = next((k for k in ("step", "epoch") if any(k in r for r in records)), None)
    skip = {"step", "epoch", "kind", "time", "wall_time", "n"}
    series: dict[str, list[tuple[float, float]]] = {}
    for line, record in enumerate(records):
        x = record.get(x_key, line)
        prefix = f"{record['kind']}/" if isinstance(record.get("kind"), str) else ""
        for key, value in record.items():
            if key in skip or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            series.setdefault(prefix + key, []).append((x, value))
    return series


def training_curves(records: list[dict], path: Path, title: str = "training") -> Path | None:
    """Plot the series of ``metrics.jsonl`` records against the optimiser step.

    Every series whose name contains "loss" shares the first panel (log scale when positive);
    validation metrics (``val/mae`` ...) come next, then the learning rate, one panel each (at most
    six panels). Returns None when there is nothing numeric to plot.
    """
    series = _series(records)
    if not series:
        return None
    losses = [n for n in series if n.endswith("loss")]
    rest = [n for n in series if n not in losses]
    order = sorted(rest, key=lambda n: (not n.startswith("val/"), n.endswith("lr") is False, n))
    panels = ([losses] if losses else []) + [[n] for n in order][: 6 - bool(losses)]
    plt = _pyplot()
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, names in zip(axes.ravel(), panels, strict=False):
        for name in names:
            xs, ys = zip(*series[name], strict=True)
            ax.plot(xs, ys, marker="." if len(xs) < 40 else None, label=name)
        if names is losses and all(y > 0 for n in names for _, y in series[n]):
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title("loss" if names is losses else names[0], fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
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
    # Equal scales in x and depth (true geometry): Speed & Structure's 1259 m x 300 m maps are tall.
    aspect = survey.nz * survey.dz / (survey.nx * survey.dx)
    width = 3.2 if aspect < 2.0 else 1.6
    fig, axes = plt.subplots(
        1, len(panels), figsize=(width * len(panels) + 1.5, width * aspect + 1.0), layout="constrained"
    )
    axes = np.atleast_1d(axes)
    velocity_image = None
    for ax, (label, image) in zip(axes, panels, strict=True):
        if label.startswith("error"):
            limit = float(np.abs(image).max()) or 1.0
            im = ax.imshow(image, extent=extent, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="equal")
            fig.colorbar(im, ax=ax, shrink=0.8, label=survey.units)
        elif label.startswith("ensemble"):
            im = ax.imshow(image, extent=extent, cmap="magma", aspect="equal")
            fig.colorbar(im, ax=ax, shrink=0.8, label=survey.units)
        else:
            velocity_image = ax.imshow(
                image, extent=extent, cmap="viridis", vmin=survey.vmin, vmax=survey.vmax, aspect="equal"
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
    """One panel per shot: (shots, time, receivers) records, time down, clipped at the 95th
    percentile of |amplitude| so that reflections show beside the strong direct wave."""
    plt = _pyplot()
    gathers = np.asarray(gathers, dtype=np.float32)
    clip = float(np.percentile(np.abs(gathers), 95)) or 1.0
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
