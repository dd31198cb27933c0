"""Ensembles of prediction directories: mean, median or weighted mean, sample by sample.

The combination is a pure function of a member stack ``(members, nz, nx)``; the per-pixel
standard deviation across members is kept as the ensemble's uncertainty map (``spread``).
Weights for the weighted mean can be fitted on a validation set: they minimise the chosen metric
over the probability simplex (non-negative, summing to one) with ``scipy.optimize`` (SLSQP),
optionally one weight vector per velocity family.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from seisinv.errors import DataError, SeisinvError
from seisinv.metrics import mae_per_sample, mape_per_sample, mse_per_sample

METHODS = ("mean", "median", "weighted")
# Metrics a weight fit can minimise: name -> per-sample function of (pred, true) batches.
FIT_METRICS: dict[str, Callable] = {
    "mae": mae_per_sample,
    "mse": mse_per_sample,
    "mape": mape_per_sample,
}
ALL_FAMILIES = "*"
# Pixels per member used when fitting weights; larger validation sets are subsampled.
FIT_PIXEL_BUDGET = 4_000_000


def normalise_weights(weights: Sequence[float], n_members: int) -> np.ndarray:
    """Weights as a (members,) float64 array on the simplex (non-negative, sum 1).

    Raises:
        SeisinvError: wrong count, a negative weight, or all zero.
    """
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size != n_members:
        raise SeisinvError(f"got {w.size} weight(s) for {n_members} ensemble member(s)")
    if np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
        raise SeisinvError(f"ensemble weights must be finite, non-negative, not all zero: {w.tolist()}")
    return w / w.sum()


def combine(stack: np.ndarray, method: str = "mean", weights: Sequence[float] | None = None):
    """Combine member predictions of one sample.

    Args:
        stack: (members, nz, nx) velocities in survey units.
        method: "mean", "median" or "weighted" (needs ``weights``).
        weights: (members,) non-negative; normalised to sum to one.

    Returns:
        (velocity, spread): both (nz, nx) float32 in survey units; spread is the per-pixel
        standard deviation across members (population std, 0 for a single member).
    """
    stack = np.asarray(stack, dtype=np.float64)
    if stack.ndim != 3 or stack.shape[0] == 0:
        raise DataError(f"expected a (members, nz, nx) stack, got shape {stack.shape}")
    if method == "mean":
        velocity = stack.mean(axis=0)
    elif method == "median":
        velocity = np.median(stack, axis=0)
    elif method == "weighted":
        if weights is None:
            raise SeisinvError("method 'weighted' needs weights (give --weights or --fit-on)")
        velocity = np.tensordot(normalise_weights(weights, stack.shape[0]), stack, axes=1)
    else:
        raise SeisinvError(f"unknown ensemble method {method!r}; known: {', '.join(METHODS)}")
    return velocity.astype(np.float32), stack.std(axis=0).astype(np.float32)


def fit_weights(members: np.ndarray, truth: np.ndarray, metric: str = "mae") -> np.ndarray:
    """Simplex weights minimising ``metric`` of the weighted mean against the truth.

    Args:
        members: (members, n, nz, nx) validation predictions in survey units.
        truth: (n, nz, nx) true velocities, same units.
        metric: "mae", "mse" or "mape" (the mean of the per-sample values is minimised).

    Returns:
        (members,) float64 weights, non-negative, summing to one. The result is never worse on
        this data than the best single member or the plain mean (those are tried as well).
    """
    from scipy.optimize import minimize

    if metric not in FIT_METRICS:
        raise SeisinvError(f"cannot fit weights for metric {metric!r}; use one of {list(FIT_METRICS)}")
    members = np.asarray(members, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if members.ndim != 4 or members.shape[1:] != truth.shape:
        raise DataError(f"members {members.shape} do not match truth {truth.shape} as (m, n, nz, nx)")
    n_members = members.shape[0]
    per_sample = FIT_METRICS[metric]

    def loss(w: np.ndarray) -> float:
        blend = np.tensordot(np.clip(w, 0, None) / max(np.clip(w, 0, None).sum(), 1e-12), members, 1)
        return float(per_sample(blend, truth).mean())

    candidates = [np.full(n_members, 1.0 / n_members)] + list(np.eye(n_members))
    result = minimize(
        loss,
        candidates[0],
        method="SLSQP",
        bounds=[(0.0, 1.0)] * n_members,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
        options={"maxiter": 200, "ftol": 1e-10},
    )
    candidates.append(np.clip(result.x, 0.0, None))
    best = min(candidates, key=loss)
    return best / best.sum()


def _subsample(members: np.ndarray, truth: np.ndarray, seed: int = 0):
    """Keep at most FIT_PIXEL_BUDGET pixels per member (same random pixels for all)."""
    n, nz, nx = truth.shape
    if n * nz * nx <= FIT_PIXEL_BUDGET:
        return members, truth
    keep = np.random.default_rng(seed).choice(nz * nx, FIT_PIXEL_BUDGET // n, replace=False)
    return (
        members.reshape(*members.shape[:2], nz * nx)[..., keep][..., None],
        truth.reshape(n, nz * nx)[:, keep][..., None],
    )


@dataclass
class EnsemblePlan:
    """How to combine members: the method and, for "weighted", weights per family.

    ``weights[ALL_FAMILIES]`` applies to every sample whose family has no own entry.
    """

    method: str = "mean"
    weights: dict[str, list[float]] = field(default_factory=dict)

    def weights_for(self, family: str | None) -> list[float] | None:
        if self.method != "weighted":
            return None
        return self.weights.get(family or ALL_FAMILIES, self.weights.get(ALL_FAMILIES))

    def to_dict(self) -> dict:
        return {"method": self.method, "weights": self.weights}


def fit_plan(
    member_stores: Sequence,
    truth: dict[str, tuple[np.ndarray, str | None]],
    metric: str = "mae",
    per_family: bool = False,
    min_family_samples: int = 3,
) -> EnsemblePlan:
    """Fit weighted-mean weights on the validation samples every member has predicted.

    Args:
        member_stores: PredictionStore objects (one per member).
        truth: ``id -> ((nz, nx) true velocity, family or None)`` for the validation samples.
        metric: the metric to minimise ("mae", "mse", "mape").
        per_family: also fit one weight vector per family with at least ``min_family_samples``
            samples (others fall back to the global weights).
    """
    shared = sorted(set(truth).intersection(*(set(s.ids()) for s in member_stores)))
    if not shared:
        raise DataError("no validation sample is predicted by every member; cannot fit weights")

    def fit(ids: list[str]) -> list[float]:
        members = np.stack([np.stack([s.read(i) for i in ids]) for s in member_stores])
        true = np.stack([truth[i][0] for i in ids])
        return fit_weights(*_subsample(members, true), metric=metric).tolist()

    weights = {ALL_FAMILIES: fit(shared)}
    if per_family:
        families = sorted({truth[i][1] for i in shared if truth[i][1]})
        for family in families:
            ids = [i for i in shared if truth[i][1] == family]
            if len(ids) >= min_family_samples:
                weights[family] = fit(ids)
    return EnsemblePlan(method="weighted", weights=weights)


def ensemble_stores(
    member_stores: Sequence,
    out_store,
    plan: EnsemblePlan,
    families: dict[str, str | None] | None = None,
    progress: bool = True,
) -> int:
    """Combine the members' predictions of every sample all of them hold; write velocity + spread.

    Args:
        member_stores: PredictionStore objects with the same survey.
        out_store: the PredictionStore to write (samples already in it are skipped: resumable).
        plan: method and weights.
        families: ``id -> family`` where known (selects per-family weights).

    Returns:
        The number of samples written now.
    """
    from seisinv.runtime import progress_bar

    if not member_stores:
        raise SeisinvError("an ensemble needs at least one member prediction directory")
    for store in member_stores:
        if store.survey.to_dict() != out_store.survey.to_dict():
            raise DataError(
                f"{store.root}: survey {store.survey.name!r} differs from {out_store.survey.name!r}"
            )
    id_sets = [set(s.ids()) for s in member_stores]
    shared = sorted(set.intersection(*id_sets))
    if not shared:
        raise DataError("the member prediction directories have no sample in common")
    families = families or {}
    todo = [i for i in shared if not out_store.has(i)]
    with progress_bar(disable=not progress) as bar:
        task = bar.add_task("ensemble", total=len(todo))
        for sample_id in todo:
            stack = np.stack([s.read(sample_id) for s in member_stores])
            velocity, spread = combine(stack, plan.method, plan.weights_for(families.get(sample_id)))
            out_store.write(sample_id, velocity, spread=spread)
            bar.advance(task)
    return len(todo)
