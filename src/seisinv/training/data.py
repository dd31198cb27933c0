"""Turn a ``TrainConfig``'s data section into training and validation datasets.

The training pool is ``data.train``; validation is either ``data.val`` or one fold of the pool
(``folds``), synthetic samples never validating. The gather pipeline is fitted on the training
samples only, so no validation statistics leak into the inputs.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seisinv.errors import ConfigError, DataError
from seisinv.survey import Survey, load_survey
from seisinv.training.config import TrainConfig

# Samples used to fit the pipeline's statistics (z-score mean / std): enough for a stable
# estimate, few enough that start-up stays fast on big datasets.
PIPELINE_FIT_SAMPLES = 256


@dataclass
class TrainData:
    """Datasets of one run.

    Attributes:
        survey: the survey of every sample.
        pipeline: the fitted ``seisinv.data.Pipeline`` (saved with each checkpoint).
        train: ``SeismicDataset`` of training samples (with augmentation).
        val: ``SeismicDataset`` of validation samples, or None when there are none.
        folds: ``{id: fold}`` of the training pool (empty when ``data.val`` or no folds are used).
        weights: per training sample (aligned with ``train``), the sampling weight from
            ``data.weights``; None when every sample is drawn once per epoch.
    """

    survey: Survey
    pipeline: Any
    train: Any
    val: Any | None
    folds: dict[str, int] = field(default_factory=dict)
    weights: list[float] | None = None


def fold_split(source, config: TrainConfig) -> tuple[list[int], list[int], dict[str, int]]:
    """(train indices, validation indices, fold of each id) of ``source`` for ``config.folds``.

    Folds come from ``config.folds.file`` when given, else from ``seisinv.data.folds.assign_folds``
    (hash of seed and id, balanced by family, synthetic samples train-only). A pool made only of
    synthetic samples (``seisinv generate`` output) would have nothing to validate on, so its
    synthetic samples are dealt into folds like real ones, except ``mix`` blends: they widen the
    training distribution and never validate.
    """
    from seisinv.data.folds import assign_folds, read_folds, split_indices

    folds_cfg = config.folds
    if folds_cfg.val_fold is None:
        return list(range(len(source))), [], {}
    ids = source.ids
    if folds_cfg.file is not None:
        folds = read_folds(folds_cfg.file)
    else:
        synthetic = source.synthetic
        if all(synthetic):
            synthetic = [family == "mix" for family in source.families]
        folds = assign_folds(
            ids,
            k=folds_cfg.k,
            seed=folds_cfg.seed,
            families=source.families,
            synthetic=synthetic,
            holdout=folds_cfg.holdout,
        )
    train, val = split_indices(ids, folds, folds_cfg.val_fold)
    return train, val, folds


def _limit(indices: list[int], limit: int | None) -> list[int]:
    return indices if limit is None else indices[:limit]


def _hash_order(seed: int, sample_id: str) -> str:
    return hashlib.sha256(f"{seed}:{sample_id}".encode()).hexdigest()


def subsample_families(
    source, indices: list[int], fraction: float | dict[str, float] | None, seed: int
) -> list[int]:
    """Keep ``ceil(fraction * n)`` of each family's ``n`` samples among ``indices``.

    ``fraction`` is one number for every family or ``{family: fraction}`` (others kept whole).
    The kept samples are the first by a hash of (``seed``, id): the same set whatever the order
    of ``indices``. Returns the kept indices in their original order.

    Raises:
        ConfigError: a family named in ``fraction`` has no training sample.
    """
    if fraction is None:
        return indices
    families, ids = source.families, source.ids
    groups: dict[str, list[int]] = {}
    for index in indices:
        groups.setdefault(families[index] or "", []).append(index)
    if isinstance(fraction, dict):
        unknown = sorted(set(fraction) - set(groups))
        if unknown:
            raise ConfigError(
                f"data.fraction_per_family: no training sample of family {', '.join(unknown)} "
                f"(families: {', '.join(sorted(f for f in groups if f)) or 'none known'})"
            )
    kept: set[int] = set()
    for family, members in groups.items():
        share = fraction.get(family, 1.0) if isinstance(fraction, dict) else fraction
        count = math.ceil(share * len(members))
        members = sorted(members, key=lambda i: _hash_order(seed, ids[i]))
        kept.update(members[:count])
    return [i for i in indices if i in kept]


def _ref_path(ref) -> Path:
    for name in ("data_path", "path"):
        if hasattr(ref, name):
            return Path(getattr(ref, name))
    return Path(ref.shot_paths[0])


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def sample_weights(
    source, indices: list[int], weights: dict[str, float], roots: list[str]
) -> list[float] | None:
    """Sampling weight of each of ``indices`` from ``data.weights`` (None when it is empty).

    A key is a ``data.train`` entry (matching the samples read from it) or a family name /
    ``fnmatch`` pattern; a sample's weight is the product of the weights of every key it matches
    (1 when none).

    Raises:
        ConfigError: a key that matches no training sample (a typo would otherwise be silent),
            or weights that are all zero.
    """
    if not weights:
        return None
    families = source.families
    resolved_roots = {root: Path(root).resolve() for root in roots}
    paths = {i: _ref_path(source.refs[i]).resolve() for i in indices}
    result = [1.0] * len(indices)
    for key, weight in weights.items():
        if key in resolved_roots:
            root = resolved_roots[key]
            hits = [j for j, i in enumerate(indices) if _inside(paths[i], root)]
        else:
            hits = [
                j for j, i in enumerate(indices) if fnmatch.fnmatchcase(families[i] or "", key)
            ]
        if not hits:
            known = sorted({f for f in (families[i] for i in indices) if f})
            raise ConfigError(
                f"data.weights.{key}: matches no training sample (keys are data.train entries "
                f"or families: {', '.join(known) or 'none known'})"
            )
        for j in hits:
            result[j] *= float(weight)
    if not any(w > 0 for w in result):
        raise ConfigError("data.weights: every training sample has weight 0")
    return result


def build_data(config: TrainConfig, survey: Survey | None = None) -> TrainData:
    """Open the datasets, split them, fit the pipeline on the training samples.

    Raises:
        ConfigError: no training data configured.
        DataError: unreadable datasets, samples without velocity, an empty split.
    """
    from seisinv.data import SeismicDataset, build_pipeline, open_dataset

    survey = survey or load_survey(config.data.survey)
    if not config.data.train:
        raise ConfigError(
            "data.train: no training dataset given; set it in the config or override it, "
            "e.g. data.train=[path/to/dataset]"
        )
    pool = open_dataset(config.data.train, survey, require_velocity=True)
    folds: dict[str, int] = {}
    if config.data.val:
        train_idx = list(range(len(pool)))
        val_source = open_dataset(config.data.val, survey, require_velocity=True)
        val_idx = list(range(len(val_source)))
    else:
        train_idx, val_idx, folds = fold_split(pool, config)
        val_source = pool
    train_idx = subsample_families(pool, train_idx, config.data.fraction_per_family, config.seed)
    train_idx = _limit(train_idx, config.data.limit)
    val_idx = _limit(val_idx, config.data.val_limit)
    if not train_idx:
        raise DataError(f"{', '.join(config.data.train)}: no training samples after the split")

    pipeline = build_pipeline(config.data.transforms, survey)
    pipeline.fit(pool.subset(train_idx), max_samples=PIPELINE_FIT_SAMPLES)
    augment = None
    if config.data.augment:
        from seisinv.data.augment import build_augment

        augment = build_augment(config.data.augment, survey)
    train = SeismicDataset(pool, pipeline, augment=augment, seed=config.seed, indices=train_idx)
    val = SeismicDataset(val_source, pipeline, indices=val_idx) if val_idx else None
    weights = sample_weights(pool, train_idx, config.data.weights, list(config.data.train))
    return TrainData(
        survey=survey, pipeline=pipeline, train=train, val=val, folds=folds, weights=weights
    )


def check_validation(dataset, where: str = "validation") -> None:
    """Read every validation sample once before training, so a bad one (NaN, wrong shape) stops
    the run before the first step instead of after a whole epoch.

    Each sample is read through the dataset (the readers check shapes, dtypes, finite values and
    the velocity range, raising ``DataError`` naming the file); the transformed gathers must be
    finite and of one shape.

    Raises:
        DataError: naming the sample id and the problem.
    """
    import numpy as np

    shape = None
    for i in range(len(dataset)):
        item = dataset[i]
        gathers, velocity = item["gathers"].numpy(), item["velocity"].numpy()
        sample = item["id"]
        if not np.isfinite(gathers).all():
            raise DataError(
                f"{where} sample {sample!r}: gathers are not finite after data.transforms"
            )
        if not np.isfinite(velocity).all():
            raise DataError(f"{where} sample {sample!r}: velocity is missing or not finite")
        if tuple(velocity.shape) != tuple(dataset.source.survey.velocity_shape):
            raise DataError(
                f"{where} sample {sample!r}: velocity of shape {tuple(velocity.shape)}, the "
                f"survey expects {tuple(dataset.source.survey.velocity_shape)}"
            )
        if shape is None:
            shape = gathers.shape
        elif gathers.shape != shape:
            raise DataError(
                f"{where} sample {sample!r}: transformed gathers of shape {gathers.shape}, "
                f"the others are {shape}"
            )


def count_families(dataset) -> dict[str, int]:
    """Samples per family ("" for unknown) of a ``SeismicDataset`` (reads no sample data)."""
    families = dataset.source.families
    counts: dict[str, int] = {}
    for index in dataset.indices:
        name = families[index] or ""
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))
