"""Turn a ``TrainConfig``'s data section into training and validation datasets.

The training pool is ``data.train``; validation is either ``data.val`` or one fold of the pool
(``folds``), synthetic samples never validating. The gather pipeline is fitted on the training
samples only, so no validation statistics leak into the inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    """

    survey: Survey
    pipeline: Any
    train: Any
    val: Any | None
    folds: dict[str, int] = field(default_factory=dict)


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
            "data.train: no training dataset given; set it in the config or with "
            "--set 'data.train=[path/to/dataset]'"
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
    return TrainData(survey=survey, pipeline=pipeline, train=train, val=val, folds=folds)


def count_families(dataset) -> dict[str, int]:
    """Samples per family ("" for unknown) of a ``SeismicDataset`` (reads no sample data)."""
    families = dataset.source.families
    counts: dict[str, int] = {}
    for index in dataset.indices:
        name = families[index] or ""
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))
