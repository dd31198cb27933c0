"""The ten OpenFWI velocity families, drawn as OpenFWI draws them: ``FlatVel_A``, ``FlatVel_B``,
``CurveVel_A``, ``CurveVel_B``, ``FlatFault_A``, ``FlatFault_B``, ``CurveFault_A``,
``CurveFault_B``, ``Style_A``, ``Style_B`` (Deng et al., "OpenFWI", NeurIPS 2022 datasets track).

Every number below is in *cells of OpenFWI's 70 x 70 grid* (``REFERENCE_CELLS``) and is rescaled
to the grid asked for, so a family keeps its proportions on any square grid (on tall or wide grids
the layering stretches with the grid). Where a number was fitted to real OpenFWI maps, the
comment says so: ``python benchmarks/geology.py fit`` recomputes those tables from
``../shared/data/openfwi_real_train_maps.npz`` (FlatVel_A and CurveVel_A, 1000 maps each).
Numbers OpenFWI maps could not be measured for (no real Fault or Style maps at hand) follow the
paper's description and are marked "seisinv's choice"; ``docs/geology.md`` lists each source.

What the A and B versions share and where they differ:
- Vel (FlatVel, CurveVel): the same layer geometry; A has velocity increasing with depth
  (sorted draws), B draws every layer's velocity independently (random order).
- Fault (FlatFault, CurveFault): CurveVel-like layering cut by straight dipping faults; A sharp
  and increasing with depth, B random order and Gaussian-smoothed.
- Style: a smooth background increasing with depth (weight 0.1-0.3, as public analysis of the
  released maps found, not the paper's 0.7-0.9) plus an image-like texture; A smoother than B.

Maps are ``(nz, nx)`` float32, depth first, inside ``vrange``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seisinv.geology.base import FAMILIES, GROUPS
from seisinv.geology.fields import fft_field, gaussian_blur, to_velocity

REFERENCE_CELLS = 70  # OpenFWI's grid (70 x 70 cells): the unit of every length below

OPENFWI_FAMILIES: tuple[str, ...] = GROUPS["openfwi"]


@dataclass(frozen=True)
class StackRow:
    """How a stack with ``layers`` visible layers is drawn (lengths in reference cells).

    Attributes:
        layers: visible layer count this row describes.
        prob: how often a map has this many layers.
        first: (mean, std, min, max) thickness of the top layer.
        middle: (mean, std) thickness of every layer below the top one.
        hidden: chance that one more (unseen, deeper) layer took part in the velocity draw,
            which is what pulls real maps' velocities below the sorted-uniform expectation.
    """

    layers: int
    prob: float
    first: tuple[float, float, float, float]
    middle: tuple[float, float]
    hidden: float


# Fitted to the 1000 real FlatVel_A maps (benchmarks/geology.py fit): 3-8 layers; every layer
# below the top one has nearly the same thickness (std ~1 cell), the top one varies more and the
# bottom one takes what is left.
FLAT_STACK: tuple[StackRow, ...] = (
    StackRow(3, 0.108, (28.5, 4.0, 22, 35), (23.4, 0.8), 0.8),
    StackRow(4, 0.199, (19.7, 3.6, 12, 28), (20.1, 3.0), 0.7),
    StackRow(5, 0.174, (15.7, 3.3, 9, 21), (15.6, 1.9), 0.5),
    StackRow(6, 0.221, (12.8, 2.8, 7, 18), (12.6, 1.3), 0.55),
    StackRow(7, 0.207, (10.5, 2.6, 6, 17), (10.7, 1.1), 0.5),
    StackRow(8, 0.091, (7.5, 1.6, 5, 12), (9.9, 0.7), 0.0),
)

# Fitted to the 1000 real CurveVel_A maps: 4-8 distinct velocities per map, about equally often
# (208/190/192/213/196 of 1000); the layering itself follows the FlatVel rows.
CURVE_LAYER_PROBS: dict[int, float] = {4: 0.21, 5: 0.19, 6: 0.19, 7: 0.21, 8: 0.20}

# Fitted to CurveVel_A: standard deviation (cells) of an interface's depth across the width, as
# deciles (0 %, 10 %, ..., 100 %); every interface of a map follows the same curve (the layer
# thickness varies by ~1 cell along x).
CURVE_RELIEF_DECILES: tuple[float, ...] = (
    1.48, 2.95, 3.65, 4.29, 4.98, 5.76, 6.55, 7.43, 8.54, 10.19, 15.94,
)
# Fitted to CurveVel_A: the interface spectrum holds 1-4 cycles across the width (power share
# 0.19 / 0.24 / 0.30 / 0.13 at 1 / 2 / 3 / 4 cycles, ~0 above 5): a sum of sinusoids with
# 0.5-3.5 cycles (the upper end tuned so the mean lateral gradient matches: 23.8 vs 23.3 m/s per
# cell; 4.5 gave 29.4).
CURVE_CYCLES: tuple[float, float] = (0.5, 3.5)
CURVE_COMPONENTS: tuple[int, int] = (2, 3)

# Fault geometry: seisinv's choice after the paper's description and figures (no real Fault
# maps at hand): straight faults crossing the whole map, 1-2 in A and 1-3 in B, dipping 45-80
# degrees, throw 4-16 cells, crossing mid-depth in the middle 70 % of the width.
FAULT_COUNT = {"A": (1, 2), "B": (1, 3)}
FAULT_DIP_DEG: tuple[float, float] = (45.0, 80.0)
FAULT_THROW_CELLS: tuple[float, float] = (4.0, 16.0)
# OpenFWI's smoothing of the B fault maps: Gaussian sigma in cells (seisinv's choice).
FAULT_B_SMOOTH_CELLS: tuple[float, float] = (0.5, 1.5)

# Style: background weight 0.1-0.3 (public analysis of the released maps), texture spectrum
# exponent and horizontal elongation, and smoothing (A smoother than B): seisinv's choice.
STYLE_BACKGROUND_WEIGHT: tuple[float, float] = (0.1, 0.3)
STYLE_SPECTRAL_EXPONENT: tuple[float, float] = (2.5, 3.5)
STYLE_ELONGATION: tuple[float, float] = (1.0, 3.0)
STYLE_SMOOTH_CELLS = {"A": (1.5, 2.5), "B": (0.5, 1.0)}


def draw_deciles(rng: np.random.Generator, deciles: tuple[float, ...]) -> float:
    """One draw from the distribution whose deciles are given (inverse CDF, linear between)."""
    return float(np.interp(rng.uniform(0.0, 1.0), np.linspace(0.0, 1.0, len(deciles)), deciles))


def pick_row(rng: np.random.Generator, layers: int | None = None) -> StackRow:
    """A ``FLAT_STACK`` row: the one with ``layers`` visible layers, or one drawn by ``prob``."""
    if layers is not None:
        return next(row for row in FLAT_STACK if row.layers == layers)
    probs = np.array([row.prob for row in FLAT_STACK])
    return FLAT_STACK[int(rng.choice(len(FLAT_STACK), p=probs / probs.sum()))]


def stack_interfaces(rng: np.random.Generator, row: StackRow) -> np.ndarray:
    """Interface depths (whole reference cells, ascending) of a stack covering ``[0, 70)``.

    The top layer's thickness is drawn from ``row.first``, every other layer's from
    ``row.middle``; the bottom layer takes what is left, as in FlatVel_A. (layers - 1,)
    """
    mean, std, lo, hi = row.first
    mid_mean, mid_std = row.middle
    interfaces = [float(np.clip(rng.normal(mean, std), lo, hi))]
    while True:
        below = interfaces[-1] + max(float(rng.normal(mid_mean, mid_std)), 2.0)
        if below >= REFERENCE_CELLS:
            break
        interfaces.append(below)
    # OpenFWI's interfaces lie on whole cells.
    return np.round(np.array(interfaces))


def stack_values(
    rng: np.random.Generator, n_layers: int, increasing: bool, hidden: float = 0.0
) -> np.ndarray:
    """Unit velocities in [0, 1] of ``n_layers`` layers, top to bottom, (n_layers,).

    Increasing (A): the ``n_layers`` smallest of ``n_layers (+1 with probability hidden)``
    uniform draws, sorted (fitted to FlatVel_A's per-position means). Random (B): independent
    uniform draws.
    """
    if not increasing:
        return rng.uniform(0.0, 1.0, n_layers)
    total = n_layers + int(rng.random() < hidden)
    return np.sort(rng.uniform(0.0, 1.0, total))[:n_layers]


def curve_relief(rng: np.random.Generator, nx: int) -> np.ndarray:
    """The fold every CurveVel interface follows: (nx,) depth shift in reference cells.

    A sum of 2-3 sinusoids with 0.5-3.5 cycles across the width and random phases, rescaled to a
    standard deviation drawn from ``CURVE_RELIEF_DECILES``.
    """
    x = np.linspace(0.0, 1.0, nx)
    n = int(rng.integers(CURVE_COMPONENTS[0], CURVE_COMPONENTS[1] + 1))
    cycles = rng.uniform(*CURVE_CYCLES, size=(n, 1))
    weights = rng.uniform(0.3, 1.0, size=(n, 1))
    phases = rng.uniform(0.0, 2 * np.pi, size=(n, 1))
    curve = (weights * np.sin(2 * np.pi * cycles * x[None, :] + phases)).sum(axis=0)
    std = curve.std()
    return curve * (draw_deciles(rng, CURVE_RELIEF_DECILES) / std if std > 0 else 0.0)


def fault_throw_field(rng: np.random.Generator, shape: tuple[int, int], version: str) -> np.ndarray:
    """Depth shift (reference cells) of every cell after the faults, (nz, nx) float64.

    Each fault is a straight line through the map; cells on its hanging-wall side read the
    layering from a depth shifted by the throw (either sign: normal or reverse).
    """
    nz, nx = shape
    z = (np.arange(nz)[:, None] + 0.5) * (REFERENCE_CELLS / nz)
    x = (np.arange(nx)[None, :] + 0.5) * (REFERENCE_CELLS / nx)
    shift = np.zeros(shape)
    lo, hi = FAULT_COUNT[version]
    for _ in range(int(rng.integers(lo, hi + 1))):
        x_mid = rng.uniform(0.15, 0.85) * REFERENCE_CELLS
        dip = np.deg2rad(rng.uniform(*FAULT_DIP_DEG))
        lean = rng.choice([-1.0, 1.0])
        fault_x = x_mid + lean * (z - REFERENCE_CELLS / 2) / np.tan(dip)
        throw = rng.uniform(*FAULT_THROW_CELLS) * rng.choice([-1.0, 1.0])
        shift = shift + throw * (x > fault_x)
    return shift


def layered_map(
    rng: np.random.Generator,
    shape: tuple[int, int],
    *,
    increasing: bool,
    curved: bool,
    faulted: str | None = None,
) -> np.ndarray:
    """A Vel or Fault family map in unit velocities [0, 1], (nz, nx) float64.

    Args:
        increasing: A (sorted velocities) or B (random order).
        curved: fold every interface along one ``curve_relief`` curve.
        faulted: None, or the version ("A"/"B") whose fault count to use.
    """
    nz, nx = shape
    if curved:
        layers = int(rng.choice(list(CURVE_LAYER_PROBS), p=list(CURVE_LAYER_PROBS.values())))
        row = pick_row(rng, layers)
    else:
        row = pick_row(rng)
    relief = curve_relief(rng, nx) if curved else np.zeros(nx)
    # Folds and faults move a stack drawn for the visible depth range: the top layer reaches up
    # and the bottom one down, as in CurveVel_A, whose maps hold exactly the 4-8 velocities of
    # their stack. (Padding the stack instead brings extra thin, low-contrast layers into view.)
    interfaces = stack_interfaces(rng, row)
    values = stack_values(rng, len(interfaces) + 1, increasing, row.hidden)
    shift = fault_throw_field(rng, shape, faulted) if faulted else 0.0
    # Depth (reference cells) at which each cell reads the flat stack; integer relief keeps
    # interfaces on whole cells, as OpenFWI's are.
    z = np.arange(nz)[:, None] * (REFERENCE_CELLS / nz)
    depth = z - np.round(relief)[None, :] - shift
    labels = np.searchsorted(interfaces, depth, side="right")
    return values[labels]


def style_map(rng: np.random.Generator, shape: tuple[int, int], version: str) -> np.ndarray:
    """A Style family map in unit velocities [0, 1], (nz, nx) float64.

    ``w * background + (1 - w) * texture``: the background rises linearly with depth, the
    texture is an image-like random field (power spectrum ~ 1/k^beta, elongated horizontally, as
    Marmousi-styled natural images are), then Gaussian smoothing and a random sub-range.
    """
    nz, nx = shape
    scale = nz / REFERENCE_CELLS
    texture = fft_field(
        rng, shape, exponent=rng.uniform(*STYLE_SPECTRAL_EXPONENT),
        elongation=rng.uniform(*STYLE_ELONGATION),
    )
    texture = (texture - texture.min()) / max(np.ptp(texture), 1e-12)
    background = np.broadcast_to(np.linspace(0.0, 1.0, nz)[:, None], shape)
    weight = rng.uniform(*STYLE_BACKGROUND_WEIGHT)
    unit = weight * background + (1.0 - weight) * texture
    sigma = rng.uniform(*STYLE_SMOOTH_CELLS[version]) * scale
    unit = gaussian_blur(unit, sigma=(sigma, sigma))
    low, high = rng.uniform(0.0, 0.25), rng.uniform(0.75, 1.0)
    return low + (unit - unit.min()) / max(np.ptp(unit), 1e-12) * (high - low)


def _register_layered(name: str, *, increasing: bool, curved: bool, faulted: str | None,
                      smooth: tuple[float, float] | None) -> None:
    def builder(rng: np.random.Generator, shape: tuple[int, int],
                vrange: tuple[float, float]) -> np.ndarray:
        unit = layered_map(rng, shape, increasing=increasing, curved=curved, faulted=faulted)
        if smooth is not None:
            sigma = rng.uniform(*smooth) * shape[0] / REFERENCE_CELLS
            unit = gaussian_blur(unit, sigma=(sigma, sigma))
        return to_velocity(unit, vrange)

    order = "increasing with depth" if increasing else "in random order"
    builder.__doc__ = f"OpenFWI {name}: layers {order}; (nz, nx) in ``vrange`` units."
    builder.__name__ = name
    FAMILIES.register(name)(builder)


def _register_style(name: str, version: str) -> None:
    def builder(rng: np.random.Generator, shape: tuple[int, int],
                vrange: tuple[float, float]) -> np.ndarray:
        return to_velocity(style_map(rng, shape, version), vrange)

    builder.__doc__ = f"OpenFWI {name}: background + image-like texture; (nz, nx) in ``vrange``."
    builder.__name__ = name
    FAMILIES.register(name)(builder)


for _version, _increasing in (("A", True), ("B", False)):
    _register_layered(f"FlatVel_{_version}", increasing=_increasing, curved=False,
                      faulted=None, smooth=None)
    _register_layered(f"CurveVel_{_version}", increasing=_increasing, curved=True,
                      faulted=None, smooth=None)
    _smooth = FAULT_B_SMOOTH_CELLS if _version == "B" else None
    _register_layered(f"FlatFault_{_version}", increasing=_increasing, curved=False,
                      faulted=_version, smooth=_smooth)
    _register_layered(f"CurveFault_{_version}", increasing=_increasing, curved=True,
                      faulted=_version, smooth=_smooth)
    _register_style(f"Style_{_version}", _version)
