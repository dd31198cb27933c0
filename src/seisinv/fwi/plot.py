"""Convergence figure of an FWI run: relative data misfit against iteration for every sample."""

from __future__ import annotations

from pathlib import Path

from seisinv.io import atomic_open

MAX_LINES = 50  # more samples than this are drawn as their median and 10-90 % band only


def convergence_plot(histories: list[dict], path: str | Path) -> Path:
    """Write a PNG of ``misfit / misfit[0]`` per iteration (log scale), bands marked.

    Args:
        histories: per-sample records as written by ``seisinv.fwi.job`` (keys ``misfit``,
            ``band_hz``, optionally ``model_mae``).
        path: output PNG.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    has_mae = all("model_mae" in h for h in histories)
    fig, axes = plt.subplots(1, 2 if has_mae else 1, figsize=(10 if has_mae else 5.5, 3.8),
                             squeeze=False)
    panels = [("misfit", "data misfit / first iteration")]
    if has_mae:
        panels.append(("model_mae", "model MAE / start"))
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        curves = [np.asarray(h[key], dtype=float) for h in histories]
        length = min(len(c) for c in curves)
        rel = np.stack([c[:length] / max(c[0], 1e-30) for c in curves])
        if len(rel) <= MAX_LINES:
            for curve in rel:
                ax.plot(curve, lw=0.8, alpha=0.7)
        else:
            lo, mid, hi = np.percentile(rel, [10, 50, 90], axis=0)
            ax.fill_between(np.arange(length), lo, hi, alpha=0.3, label="10-90 %")
            ax.plot(mid, lw=1.5, label="median")
            ax.legend()
        bands = histories[0]["band_hz"]
        for i in range(1, len(bands)):
            if bands[i] != bands[i - 1] and i < length:
                ax.axvline(i - 0.5, color="0.6", ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.suptitle(f"FWI convergence ({len(histories)} samples; dashed: next frequency band)")
    fig.tight_layout()
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)
    return path
