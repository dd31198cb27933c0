"""Fold rules of an experiment: ``{id: fold}`` for the training pool, written to ``folds.csv``.

Every run of an experiment reads the same ``OUT/folds.csv`` (``TrainConfig.folds.file``), so the
runs' validation folds are disjoint by construction and the split is on disk for inspection.
Fold ``-1`` (``seisinv.data.folds.TRAIN_ONLY``) always trains: synthetic samples, and with
``first`` the real samples past the first ``first``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seisinv.data.folds import TRAIN_ONLY, assign_folds, read_folds
from seisinv.errors import DataError


def kfold_assign(n: int, k: int, seed: int) -> np.ndarray:
    """Fold of each of ``n`` positions as scikit-learn's ``KFold(k, shuffle=True,
    random_state=seed).split(range(n))`` assigns them (its validation index sets).

    scikit-learn shuffles ``arange(n)`` with ``np.random.RandomState(seed)`` and cuts it into
    ``k`` consecutive folds, the first ``n % k`` one sample larger.
    """
    if n < k:
        raise DataError(f"kfold: {n} samples cannot fill {k} folds")
    order = np.arange(n)
    np.random.RandomState(seed).shuffle(order)  # noqa: NPY002 - scikit-learn's generator
    sizes = np.full(k, n // k)
    sizes[: n % k] += 1
    folds = np.empty(n, dtype=np.int64)
    start = 0
    for fold, size in enumerate(sizes):
        folds[order[start : start + size]] = fold
        start += size
    return folds


def experiment_folds(rule, ids: Sequence[str], synthetic: Sequence[bool],
                     families: Sequence[str | None]) -> dict[str, int]:
    """``{id: fold}`` for a ``FoldRule`` over the pool's ids (synthetic samples -> ``TRAIN_ONLY``).

    Real ids are taken in sorted order (``first`` counts in that order).

    Raises:
        DataError: a folds file missing ids of the pool, or too few samples for ``k`` folds.
    """
    ids = [str(i) for i in ids]
    if rule.rule == "file":
        folds = read_folds(rule.file)
        missing = [i for i in ids if i not in folds]
        if missing:
            raise DataError(f"{rule.file}: {len(missing)} sample ids have no fold (first: "
                            f"{missing[0]!r})")
        return {i: folds[i] for i in ids}
    real = sorted(i for i, s in zip(ids, synthetic, strict=True) if not s)
    folded = real if rule.first is None else real[: rule.first]
    out = {i: TRAIN_ONLY for i in ids}
    if rule.rule == "kfold":
        out.update(zip(folded, kfold_assign(len(folded), rule.k, rule.seed).tolist(), strict=True))
    else:
        family_of = dict(zip(ids, families, strict=True))
        out.update(assign_folds(folded, rule.k, rule.seed,
                                families=[family_of[i] for i in folded]))
    return out
