"""Post-processing of predicted velocity maps as named operations (``POSTPROCESS`` registry).

Every operation is built from a spec ``{"name": ..., **params}`` (``parse_post("name:k=v,...")``
reads the CLI form) and acts on one map ``velocity (nz, nx)`` in survey units, depth first
(axis 0 is depth, row 0 the surface). A spec may name ``families`` (``"FlatVel_A+FlatVel_B"``):
the operation then only touches samples whose family is known and listed. ``build_chain`` chains
specs; ``fit_specs`` fills in the parameters of fitted operations from validation data.

=================  =========================================  ======================================
name               params (defaults)                          effect
=================  =========================================  ======================================
``clip``           ``vmin``, ``vmax`` (survey range)          values clipped to [vmin, vmax]
``round``          ``step=1``                                 rounded to the nearest multiple of step
                                                              (OpenFWI velocities are integers)
``snap_levels``    ``levels=8``, ``axis="column"``            1-D k-means per column / row / map;
                                                              each value snaps to its cluster centre
                                                              (layered families: few distinct values)
``bias``           ``offset`` (fitted), ``per="row"``         subtract the mean validation residual
                                                              (per depth row, or one ``global`` value)
``lowpass``        ``cutoff=0.25``                            2-D FFT of the mirror-extended map; keep
                                                              wavenumbers below cutoff x Nyquist
``gaussian``       ``sigma=1.0`` (cells)                      Gaussian smoothing (edges: nearest)
``depth_trend``    none                                       projection: row means non-decreasing
                                                              with depth (see ``depth_trend``)
``max_gradient``   ``up``, ``down`` (survey units per cell)   bounded vertical gradient, top-down
=================  =========================================  ======================================

Sources: clip, rounding and level snapping are the Kaggle GWI 4th place's post-processing (seed
003); bias correction, frequency filtering and Gaussian smoothing are the ones seed 002 tried (all
made its MAE worse: 29.7, 35.6 and 41.0 against 25.6); smoothing and the geological constraint are
seed 004's. Parameter defaults are seisinv's choices (the write-ups give none).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from seisinv.errors import ConfigError, DataError
from seisinv.registry import Registry
from seisinv.survey import Survey

# (velocity (nz, nx) survey units) -> velocity (nz, nx)
PostOp = Callable[[np.ndarray], np.ndarray]

POSTPROCESS: Registry[Callable[..., PostOp]] = Registry("post-processing operation")
# name -> fit(pred (n, nz, nx), truth (n, nz, nx), survey, **params) -> fitted params
FITTERS: dict[str, Callable[..., dict]] = {}


@POSTPROCESS.register("clip")
def _clip(survey: Survey, vmin: float | None = None, vmax: float | None = None) -> PostOp:
    lo = survey.vmin if vmin is None else float(vmin)
    hi = survey.vmax if vmax is None else float(vmax)
    if not lo < hi:
        raise ConfigError(f"post clip: vmin {lo} must be below vmax {hi}")
    return lambda v: np.clip(v, lo, hi)


@POSTPROCESS.register("round")
def _round(survey: Survey, step: float = 1.0) -> PostOp:
    if not step > 0:
        raise ConfigError(f"post round: step {step} must be positive")
    return lambda v: np.round(v / step) * step


def kmeans_1d(values: np.ndarray, k: int, iterations: int = 30) -> np.ndarray:
    """Snap each row of ``values`` (rows, n) to the nearest of at most ``k`` centres fitted to that
    row by Lloyd's algorithm (centres start at evenly spaced quantiles: deterministic).

    Returns:
        An array of the same shape whose rows hold at most ``k`` distinct values each.
    """
    values = np.asarray(values, dtype=np.float64)
    centres = np.quantile(values, (np.arange(k) + 0.5) / k, axis=1).T  # (rows, k)
    for _ in range(iterations):
        label = np.abs(values[:, :, None] - centres[:, None, :]).argmin(axis=2)
        onehot = label[:, :, None] == np.arange(k)
        count = onehot.sum(axis=1)
        total = (onehot * values[:, :, None]).sum(axis=1)
        updated = np.where(count > 0, total / np.maximum(count, 1), centres)
        if np.allclose(updated, centres):
            break
        centres = updated
    label = np.abs(values[:, :, None] - centres[:, None, :]).argmin(axis=2)
    return np.take_along_axis(centres, label, axis=1)


@POSTPROCESS.register("snap_levels")
def _snap_levels(survey: Survey, levels: int = 8, axis: str = "column") -> PostOp:
    levels = int(levels)
    if levels < 1:
        raise ConfigError(f"post snap_levels: levels {levels} must be at least 1")
    if axis not in ("column", "row", "map"):
        raise ConfigError(f"post snap_levels: axis {axis!r}; use column, row or map")

    def snap(v: np.ndarray) -> np.ndarray:
        if axis == "column":  # each x column down the depth axis
            return kmeans_1d(v.T, levels).T
        if axis == "row":
            return kmeans_1d(v, levels)
        return kmeans_1d(v.reshape(1, -1), levels).reshape(v.shape)

    return snap


@POSTPROCESS.register("bias")
def _bias(survey: Survey, offset: float | Sequence[float] | None = None, per: str = "row") -> PostOp:
    if offset is None:
        raise ConfigError("post bias: no offset; fit it on validation data (truth) or give "
                          "offset=<survey units>")
    if per not in ("row", "global"):
        raise ConfigError(f"post bias: per {per!r}; use row or global")
    shift = np.asarray(offset, dtype=np.float64)
    if shift.ndim == 1 and shift.size != survey.nz:
        raise ConfigError(f"post bias: {shift.size} row offsets for nz = {survey.nz} depth rows")
    return lambda v: v - (shift[:, None] if shift.ndim == 1 else shift)


def _fit_bias(pred: np.ndarray, truth: np.ndarray, survey: Survey, per: str = "row", **_) -> dict:
    """Mean residual (prediction - truth) per depth row, or overall."""
    residual = np.asarray(pred, np.float64) - np.asarray(truth, np.float64)
    if per == "global":
        return {"offset": float(residual.mean()), "per": per}
    return {"offset": residual.mean(axis=(0, 2)).tolist(), "per": per}


FITTERS["bias"] = _fit_bias


@POSTPROCESS.register("lowpass")
def _lowpass(survey: Survey, cutoff: float = 0.25) -> PostOp:
    if not 0 < cutoff <= 1:
        raise ConfigError(f"post lowpass: cutoff {cutoff} must lie in (0, 1] (fraction of Nyquist)")

    def lowpass(v: np.ndarray) -> np.ndarray:
        nz, nx = v.shape
        # Mirror extension makes the periodic FFT see no jump at the edges (as a 2-D DCT would).
        wide = np.concatenate([v, v[::-1]], axis=0)
        wide = np.concatenate([wide, wide[:, ::-1]], axis=1)
        spectrum = np.fft.rfft2(wide)
        kz = np.abs(np.fft.fftfreq(2 * nz))[:, None] / 0.5
        kx = np.fft.rfftfreq(2 * nx)[None, :] / 0.5
        spectrum[np.hypot(kz, kx) > cutoff] = 0
        return np.fft.irfft2(spectrum, s=wide.shape)[:nz, :nx]

    return lowpass


@POSTPROCESS.register("gaussian")
def _gaussian(survey: Survey, sigma: float = 1.0) -> PostOp:
    from scipy.ndimage import gaussian_filter

    if not sigma > 0:
        raise ConfigError(f"post gaussian: sigma {sigma} (cells) must be positive")
    return lambda v: gaussian_filter(v, sigma=float(sigma), mode="nearest")


def isotonic_increasing(values: np.ndarray) -> np.ndarray:
    """Least-squares non-decreasing fit of a 1-D sequence (pool-adjacent-violators)."""
    blocks: list[list[float]] = []  # [mean, count]
    for x in np.asarray(values, dtype=np.float64):
        blocks.append([x, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, c2), (m1, c1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * c1 + m2 * c2) / (c1 + c2), c1 + c2])
    return np.concatenate([np.full(int(c), m) for m, c in blocks])


@POSTPROCESS.register("depth_trend")
def depth_trend(survey: Survey) -> PostOp:
    """Geological constraint "velocity non-decreasing on average with depth" as a projection.

    The constraint set is the maps whose row means (mean over x at each depth) do not decrease
    with depth. Its Euclidean (least-squares) projection shifts every pixel of depth row ``z`` by
    the same amount ``m*_z - m_z``, where ``m`` are the row means and ``m*`` their isotonic
    (non-decreasing) least-squares fit: maps already satisfying it are unchanged, lateral
    structure within a row is kept, and low-velocity layers survive as long as the row means
    still increase.
    """

    def project(v: np.ndarray) -> np.ndarray:
        means = v.mean(axis=1)
        return v + (isotonic_increasing(means) - means)[:, None]

    return project


@POSTPROCESS.register("max_gradient")
def _max_gradient(survey: Survey, up: float | None = None, down: float | None = None) -> PostOp:
    """Bounded vertical gradient: going down each column, a value may exceed the one above by at
    most ``up`` and fall below it by at most ``down`` (survey units per cell; None: unbounded).
    Applied top-down (each row clamped against the already corrected row above), so the bound
    holds exactly afterwards; this is a sequential clamp, not a least-squares projection."""
    if up is None and down is None:
        raise ConfigError("post max_gradient: give up= and/or down= (survey units per cell)")
    for name, value in (("up", up), ("down", down)):
        if value is not None and value < 0:
            raise ConfigError(f"post max_gradient: {name} {value} must be >= 0")
    hi = np.inf if up is None else float(up)
    lo = np.inf if down is None else float(down)

    def clamp(v: np.ndarray) -> np.ndarray:
        out = np.array(v, dtype=np.float64)
        for z in range(1, out.shape[0]):
            out[z] = np.clip(out[z], out[z - 1] - lo, out[z - 1] + hi)
        return out

    return clamp


# ---- specs and chains ------------------------------------------------------------------------
def _value(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_post(text: str) -> dict:
    """``"name"`` or ``"name:k=v,k2=v2"`` -> ``{"name": name, k: v, ...}`` (numbers parsed).

    Raises:
        ConfigError: an unknown name or a parameter without ``=``.
    """
    name, _, rest = text.strip().partition(":")
    POSTPROCESS.get(name)
    spec: dict = {"name": name}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"post {text!r}: expected name:key=value,..., got {item!r}")
        spec[key.strip()] = _value(value.strip())
    return spec


def _families(spec: dict) -> set[str] | None:
    families = spec.get("families")
    if families is None:
        return None
    items = families.split("+") if isinstance(families, str) else list(families)
    return {str(f).strip() for f in items if str(f).strip()}


@dataclass
class PostChain:
    """Specs applied in order: ``chain(velocity (nz, nx), family=None) -> (nz, nx) float32``."""

    specs: list[dict]
    ops: list[tuple[PostOp, set[str] | None]]

    def __call__(self, velocity: np.ndarray, family: str | None = None) -> np.ndarray:
        v = np.asarray(velocity, dtype=np.float64)
        for op, families in self.ops:
            if families is None or (family is not None and family in families):
                v = np.asarray(op(v), dtype=np.float64)
        if v.shape != np.shape(velocity) or not np.all(np.isfinite(v)):
            raise DataError(f"post-processing {[s['name'] for s in self.specs]} produced a map of "
                            f"shape {v.shape} with non-finite values or a changed shape")
        return v.astype(np.float32)


def build_chain(specs: Sequence[dict] | None, survey: Survey) -> PostChain:
    """Build the operations of ``specs`` (see the module docstring) for ``survey``.

    Raises:
        ConfigError: an unknown name or bad parameters (names the spec).
    """
    ops = []
    for position, spec in enumerate(specs or []):
        if not isinstance(spec, dict) or "name" not in spec:
            raise ConfigError(f"post[{position}]: expected a mapping with a 'name', got {spec!r}")
        params = {k: v for k, v in spec.items() if k not in ("name", "families")}
        builder = POSTPROCESS.get(spec["name"])
        try:
            ops.append((builder(survey, **params), _families(spec)))
        except TypeError as exc:
            raise ConfigError(f"post[{position}] ({spec['name']}): bad parameters ({exc})") from None
    return PostChain([dict(s) for s in specs or []], ops)


def fit_specs(
    specs: Sequence[dict],
    pred: np.ndarray,
    truth: np.ndarray,
    survey: Survey,
    families: Sequence[str | None] | None = None,
) -> list[dict]:
    """Fill in the parameters of fitted operations (``FITTERS``: ``bias``) from validation data.

    Operations are fitted in order on the validation predictions as the earlier operations left
    them, each on the samples its ``families`` selects. Specs already carrying their parameters
    are kept as given.

    Args:
        pred: (n, nz, nx) validation predictions, survey units.
        truth: (n, nz, nx) true velocities.
        families: the n samples' families (or None).

    Returns:
        The specs with fitted parameters (JSON-serialisable; save them to reapply on test data).
    """
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if pred.shape != truth.shape or pred.ndim != 3:
        raise DataError(f"predictions {pred.shape} and truth {truth.shape} must be equal (n, nz, nx)")
    labels = list(families) if families is not None else [None] * len(pred)
    fitted = []
    for spec in specs:
        spec = dict(spec)
        wanted = _families(spec)
        chosen = [k for k, f in enumerate(labels) if wanted is None or f in wanted]
        if spec["name"] in FITTERS and "offset" not in spec and chosen:
            params = {k: v for k, v in spec.items() if k not in ("name", "families")}
            spec.update(FITTERS[spec["name"]](pred[chosen], truth[chosen], survey, **params))
        fitted.append(spec)
        chain = build_chain([spec], survey)
        pred = np.stack([chain(p, f) for p, f in zip(pred, labels, strict=True)]).astype(np.float64)
    return fitted
