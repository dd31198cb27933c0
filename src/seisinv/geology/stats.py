"""Statistics of velocity maps, to compare generated families with real maps per statistic.

Pure functions of ``maps: (n, nz, nx)`` arrays (depth first, any units); each returns one value
per map, (n,) float64, so two sets compare by their distributions (``summarise``). A "jump" is a
change between vertically neighbouring cells larger than ``JUMP`` of the set's value range, which
counts sharp interfaces and ignores the smooth gradients of Style maps.
"""

from __future__ import annotations

import numpy as np

JUMP = 0.01  # fraction of the value range that counts as an interface between two cells


def _threshold(maps: np.ndarray) -> float:
    return JUMP * float(np.ptp(maps)) if maps.size else 0.0


def layer_count(maps: np.ndarray) -> np.ndarray:
    """Plateaus down the centre column: 1 + number of vertical jumps, (n,)."""
    column = maps[:, :, maps.shape[2] // 2]
    return 1.0 + (np.abs(np.diff(column, axis=1)) > _threshold(maps)).sum(axis=1)


def layer_thickness(maps: np.ndarray) -> np.ndarray:
    """Mean run length (cells) between jumps down the centre column, top and bottom runs
    included, (n,)."""
    return maps.shape[1] / layer_count(maps)


def increasing_fraction(maps: np.ndarray) -> np.ndarray:
    """Fraction of vertical neighbour pairs with no decrease beyond the jump threshold, (n,)."""
    steps = np.diff(maps, axis=1)
    return (steps >= -_threshold(maps)).mean(axis=(1, 2))


def vertical_gradient(maps: np.ndarray) -> np.ndarray:
    """Mean |dv/dz| in value units per cell, (n,)."""
    return np.abs(np.diff(maps, axis=1)).mean(axis=(1, 2))


def lateral_gradient(maps: np.ndarray) -> np.ndarray:
    """Mean |dv/dx| in value units per cell, (n,)."""
    return np.abs(np.diff(maps, axis=2)).mean(axis=(1, 2))


def lateral_jumps(maps: np.ndarray) -> np.ndarray:
    """Fraction of horizontal neighbour pairs that differ by more than 10 % of the range (sharp
    lateral discontinuities: fault planes, steep interfaces), (n,)."""
    return (np.abs(np.diff(maps, axis=2)) > 10 * _threshold(maps)).mean(axis=(1, 2))


def interface_relief(maps: np.ndarray) -> np.ndarray:
    """Std (cells) across x of the depth of the first vertical jump, (n,); 0 for flat layers.

    Columns without a jump are left out; a map with fewer than two such columns scores 0.
    """
    jumps = np.abs(np.diff(maps, axis=1)) > _threshold(maps)  # (n, nz-1, nx)
    out = np.zeros(len(maps))
    for i, jump in enumerate(jumps):
        has = jump.any(axis=0)
        if has.sum() >= 2:
            out[i] = np.argmax(jump[:, has], axis=0).std()
    return out


def value_histogram(maps: np.ndarray, bins: int, vrange: tuple[float, float]) -> np.ndarray:
    """Share of cells per velocity bin over the whole set, (bins,) summing to 1."""
    counts, _ = np.histogram(maps, bins=bins, range=vrange)
    return counts / max(counts.sum(), 1)


STATISTICS = {
    "layer count (centre column)": layer_count,
    "layer thickness (cells)": layer_thickness,
    "increasing pairs (fraction)": increasing_fraction,
    "vertical gradient (units/cell)": vertical_gradient,
    "lateral gradient (units/cell)": lateral_gradient,
    "lateral jumps (fraction)": lateral_jumps,
    "interface relief (cells)": interface_relief,
    "mean velocity": lambda maps: maps.mean(axis=(1, 2)),
}


def summarise(maps: np.ndarray) -> dict[str, tuple[float, float, float]]:
    """(5th percentile, median, 95th percentile) of every statistic in ``STATISTICS``."""
    maps = np.asarray(maps, dtype=np.float64)
    return {
        name: tuple(float(v) for v in np.percentile(fn(maps), [5, 50, 95]))
        for name, fn in STATISTICS.items()
    }
