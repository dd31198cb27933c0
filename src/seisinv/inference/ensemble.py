"""Ensembles of prediction directories: mean, median, weighted mean or hill climbing, sample by
sample.

The combination is a pure function of a member stack ``(members, nz, nx)``; the per-pixel
standard deviation across members is kept as the ensemble's uncertainty map (``spread``).
Weights can be fitted on a validation set, optionally one weight vector per velocity family:

- ``weighted``: minimise the chosen metric over the probability simplex (non-negative, summing to
  one) with ``scipy.optimize`` (SLSQP);
- ``hill_climb``: greedy forward selection with replacement (Caruana et al. 2004, as the Kaggle GWI
  5th place used): start from the best single member, repeatedly add the member (possibly one
  already chosen) whose addition lowers the metric of the bag's mean the most, stop when no
  addition helps; the weights are the members' counts in the bag.

``METHODS`` is the one table of methods (name -> ``EnsembleMethod``); the CLI and the experiment
runner look methods up there. An ensemble directory is itself a prediction directory, so it can be
a member of another ensemble (ensembles of ensembles with fixed weights, e.g. 0.6 / 0.4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from seisinv.errors import DataError, SeisinvError
from seisinv.metrics import mae_per_sample, mape_per_sample, mse_per_sample


@dataclass(frozen=True)
class EnsembleMethod:
    """One way to combine members.

    Attributes:
        name: the name configs and ``--method`` use.
        needs_weights: combining needs a weight vector (given, read from a plan, or fitted).
        fit: ``(members (m, n, nz, nx), truth (n, nz, nx), metric) -> (m,) weights`` for methods
            whose weights are fitted on validation data; None otherwise.
        summary: one line for help texts and docs.
    """

    name: str
    needs_weights: bool
    fit: Callable | None
    summary: str

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
        method: a name in ``METHODS``; "weighted" and "hill_climb" need ``weights``.
        weights: (members,) non-negative; normalised to sum to one.

    Returns:
        (velocity, spread): both (nz, nx) float32 in survey units; spread is the per-pixel
        standard deviation across members (population std, 0 for a single member).

    Raises:
        DataError: a member holds NaN or inf (named by its index in the stack).
    """
    stack = np.asarray(stack, dtype=np.float64)
    if stack.ndim != 3 or stack.shape[0] == 0:
        raise DataError(f"expected a (members, nz, nx) stack, got shape {stack.shape}")
    if not np.all(np.isfinite(stack)):
        bad = [k for k in range(stack.shape[0]) if not np.all(np.isfinite(stack[k]))]
        raise DataError(f"member(s) {bad} of the stack hold NaN or inf values")
    if get_method(method).needs_weights:
        if weights is None:
            raise SeisinvError(f"method {method!r} needs weights (give weights, or fit them on "
                               "validation truth, or reapply a plan)")
        velocity = np.tensordot(normalise_weights(weights, stack.shape[0]), stack, axes=1)
    elif method == "mean":
        velocity = stack.mean(axis=0)
    else:
        velocity = np.median(stack, axis=0)
    return velocity.astype(np.float32), stack.std(axis=0).astype(np.float32)


def _fit_inputs(members, truth, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Members (m, n, nz, nx) and truth (n, nz, nx) as float64, checked for a weight fit."""
    if metric not in FIT_METRICS:
        raise SeisinvError(f"cannot fit weights for metric {metric!r}; use one of {list(FIT_METRICS)}")
    members = np.asarray(members, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if members.ndim != 4 or members.shape[1:] != truth.shape:
        raise DataError(f"members {members.shape} do not match truth {truth.shape} as (m, n, nz, nx)")
    return members, truth


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

    members, truth = _fit_inputs(members, truth, metric)
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


def hill_climb_weights(
    members: np.ndarray,
    truth: np.ndarray,
    metric: str = "mae",
    max_rounds: int = 100,
    init: int = 1,
    patience: int = 10,
) -> np.ndarray:
    """Ensemble selection by greedy forward selection with replacement (Caruana et al., 2004).

    The bag starts with the ``init`` best single members ("sorted initialisation"); each round
    adds the member (already chosen ones included) whose addition gives the bag mean with the
    lowest ``metric``, even when that is worse than before, so the search can cross a small rise;
    it stops after ``max_rounds`` additions or ``patience`` rounds without a new best, and returns
    the best bag seen. Ties go to the lower member index (deterministic).

    Args:
        members: (members, n, nz, nx) validation predictions in survey units.
        truth: (n, nz, nx) true velocities, same units.
        metric: "mae", "mse" or "mape" (mean of the per-sample values).
        max_rounds: at most this many additions after the initial bag.
        init: members in the initial bag (the best ones by ``metric``; at most all).
        patience: rounds without improvement before stopping.

    Returns:
        (members,) float64 weights = counts / bag size (non-negative, summing to one). On this data
        the result is never worse than the mean of the ``init`` best members (with ``init=1``, the
        best single member).
    """
    members, truth = _fit_inputs(members, truth, metric)
    if init < 1 or max_rounds < 0 or patience < 1:
        raise SeisinvError(f"hill climbing needs init >= 1, max_rounds >= 0, patience >= 1; got "
                           f"init={init}, max_rounds={max_rounds}, patience={patience}")
    per_sample = FIT_METRICS[metric]

    def score(blend: np.ndarray) -> float:
        return float(per_sample(blend, truth).mean())

    singles = [score(m) for m in members]
    counts = np.zeros(members.shape[0], dtype=np.int64)
    counts[np.argsort(singles, kind="stable")[:init]] = 1
    total = np.tensordot(counts.astype(np.float64), members, axes=1)
    best, best_counts, stale = score(total / counts.sum()), counts.copy(), 0
    for _ in range(max_rounds):
        size = counts.sum() + 1
        trial = [score((total + m) / size) for m in members]
        pick = int(np.argmin(trial))
        counts[pick] += 1
        total += members[pick]
        if trial[pick] < best:
            best, best_counts, stale = trial[pick], counts.copy(), 0
        else:
            stale += 1
            if stale >= patience:
                break
    return best_counts / best_counts.sum()


METHODS: dict[str, EnsembleMethod] = {
    m.name: m
    for m in (
        EnsembleMethod("mean", False, None, "per-pixel mean of the members"),
        EnsembleMethod("median", False, None, "per-pixel median of the members"),
        EnsembleMethod("weighted", True, fit_weights,
                       "weighted mean; weights given or fitted on the simplex (SLSQP)"),
        EnsembleMethod("hill_climb", True, hill_climb_weights,
                       "weighted mean; weights from greedy forward selection with replacement"),
    )
}


def get_method(name: str) -> EnsembleMethod:
    """The ``EnsembleMethod`` called ``name``.

    Raises:
        SeisinvError: an unknown name (the message lists the known ones).
    """
    try:
        return METHODS[name]
    except KeyError:
        raise SeisinvError(f"unknown ensemble method {name!r}; known: {', '.join(METHODS)}") from None


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
    """How to combine members: the method and, for weighted methods, weights per family.

    ``weights[ALL_FAMILIES]`` applies to every sample whose family has no own entry.
    """

    method: str = "mean"
    weights: dict[str, list[float]] = field(default_factory=dict)

    def weights_for(self, family: str | None) -> list[float] | None:
        if not get_method(self.method).needs_weights:
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
    method: str = "weighted",
    options: dict | None = None,
) -> EnsemblePlan:
    """Fit ensemble weights on the validation samples the members have predicted.

    Args:
        member_stores: PredictionStore objects (one per member).
        truth: ``id -> ((nz, nx) true velocity, family or None)`` for the validation samples.
        metric: the metric to minimise ("mae", "mse", "mape").
        per_family: also fit one weight vector per family with at least ``min_family_samples``
            samples (others fall back to the global weights).
        method: a fitted method of ``METHODS`` ("weighted" or "hill_climb").
        options: extra keyword arguments of the method's fit (e.g. ``{"init": 5}`` for
            ``hill_climb_weights``).

    Raises:
        DataError: the members do not all hold the same samples, a member holds NaN or inf, or
            no validation sample is predicted.
    """
    fit_method = get_method(method).fit
    if fit_method is None:
        raise SeisinvError(f"ensemble method {method!r} has no weights to fit")
    predicted = check_members(member_stores)
    shared = sorted(set(truth).intersection(predicted))
    if not shared:
        raise DataError("no validation sample is predicted by the members; cannot fit weights")

    def fit(ids: list[str]) -> list[float]:
        members = np.stack([np.stack([read_member(s, i) for i in ids]) for s in member_stores])
        true = np.stack([truth[i][0] for i in ids])
        return fit_method(*_subsample(members, true), metric=metric, **(options or {})).tolist()

    weights = {ALL_FAMILIES: fit(shared)}
    if per_family:
        families = sorted({truth[i][1] for i in shared if truth[i][1]})
        for family in families:
            ids = [i for i in shared if truth[i][1] == family]
            if len(ids) >= min_family_samples:
                weights[family] = fit(ids)
    return EnsemblePlan(method=method, weights=weights)


def check_members(member_stores: Sequence) -> list[str]:
    """The sample ids every member holds, refusing members that disagree.

    Raises:
        SeisinvError: no member given.
        DataError: a member lacks ids another member has (names the member and up to five ids).
    """
    if not member_stores:
        raise SeisinvError("an ensemble needs at least one member prediction directory")
    id_sets = [set(s.ids()) for s in member_stores]
    union = set().union(*id_sets)
    if not union:
        raise DataError(f"{member_stores[0].root}: holds no prediction")
    for store, ids in zip(member_stores, id_sets, strict=True):
        missing = sorted(union - ids)
        if missing:
            shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
            raise DataError(
                f"member {store.root} lacks {len(missing)} sample(s) the other members hold: "
                f"{shown}; finish its predictions or leave it out"
            )
    return sorted(union)


def read_member(store, sample_id: str) -> np.ndarray:
    """One member's (nz, nx) prediction, refused when it holds NaN or inf.

    Raises:
        DataError: names the member directory and the sample.
    """
    velocity = store.read(sample_id)
    if not np.all(np.isfinite(velocity)):
        bad = int(np.size(velocity) - np.count_nonzero(np.isfinite(velocity)))
        raise DataError(
            f"member {store.root}: sample {sample_id!r} holds {bad} NaN/inf value(s); "
            "an ensemble would pass them through"
        )
    return velocity


def ensemble_stores(
    member_stores: Sequence,
    out_store,
    plan: EnsemblePlan,
    families: dict[str, str | None] | None = None,
    progress: bool = True,
    post: Callable | None = None,
) -> int:
    """Combine the members' predictions of every sample; write velocity + spread.

    Args:
        member_stores: PredictionStore objects with the same survey.
        out_store: the PredictionStore to write (samples already in it are skipped: resumable).
        plan: method and weights.
        families: ``id -> family`` where known (selects per-family weights).
        post: an optional ``(velocity (nz, nx), family or None) -> velocity`` applied to each
            combined map (``seisinv.inference.postprocess.build_chain``).

    Returns:
        The number of samples written now.

    Raises:
        DataError: a member lacks samples another holds, or holds NaN/inf (named; nothing of that
            sample is written).
    """
    from seisinv.runtime import progress_bar

    shared = check_members(member_stores)
    for store in member_stores:
        if store.survey.to_dict() != out_store.survey.to_dict():
            raise DataError(
                f"{store.root}: survey {store.survey.name!r} differs from {out_store.survey.name!r}"
            )
    families = families or {}
    todo = [i for i in shared if not out_store.has(i)]
    with progress_bar(disable=not progress) as bar:
        task = bar.add_task("ensemble", total=len(todo))
        for sample_id in todo:
            stack = np.stack([read_member(s, sample_id) for s in member_stores])
            family = families.get(sample_id)
            velocity, spread = combine(stack, plan.method, plan.weights_for(family))
            if post is not None:
                velocity = post(velocity, family)
            out_store.write(sample_id, velocity, spread=spread)
            bar.advance(task)
    return len(todo)


def classify_families(
    member_stores: Sequence, classifier, ids: Sequence[str] | None = None, batch: int = 64
) -> dict[str, str]:
    """The family a classifier predicts for each sample's mean member prediction.

    Args:
        member_stores: PredictionStore objects (the ensemble's members).
        classifier: a ``torch.nn.Module`` with ``families`` (list of family names, one per logit)
            whose ``forward(velocity (B, nz, nx) survey units) -> (B, len(families))`` gives
            logits (the ``family_classifier`` model, or any stand-in with that interface).
        ids: the samples to classify (default: all the members hold).
        batch: maps per classifier call.

    Returns:
        ``id -> family name`` (argmax of the logits).

    Raises:
        SeisinvError: the classifier has no ``families`` or returns logits of the wrong shape.
    """
    import torch

    names = list(getattr(classifier, "families", None) or [])
    if not names:
        raise SeisinvError("the classifier model has no 'families' list (is it a family classifier?)")
    if batch < 1:
        raise SeisinvError(f"batch={batch} must be at least 1")
    ids = list(ids) if ids is not None else check_members(member_stores)
    parameter = next(iter(classifier.parameters()), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    found: dict[str, str] = {}
    was_training = classifier.training
    classifier.eval()  # BatchNorm must not use the statistics of these batches
    with torch.inference_mode():
        for start in range(0, len(ids), batch):
            part = ids[start : start + batch]
            mean = np.stack(
                [np.mean([read_member(s, i) for s in member_stores], axis=0) for i in part]
            ).astype(np.float32)
            logits = classifier(torch.as_tensor(mean, device=device))
            if tuple(logits.shape) != (len(part), len(names)):
                raise SeisinvError(
                    f"the classifier returned logits of shape {tuple(logits.shape)}, expected "
                    f"({len(part)}, {len(names)}) for its {len(names)} families"
                )
            for sample_id, k in zip(part, logits.argmax(dim=1).tolist(), strict=True):
                found[sample_id] = names[k]
    classifier.train(was_training)
    return found
