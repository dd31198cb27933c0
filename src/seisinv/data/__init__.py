"""seisinv.data: readers, validation, transforms, flip, augmentation, folds and the torch Dataset.

Everything that reads seismic data goes through this package (see ``docs/data.md``)::

    from seisinv.data import open_dataset, build_pipeline, SeismicDataset, make_loader

    source = open_dataset("train/", "speed-structure", require_velocity=True)
    pipeline = build_pipeline([{"name": "resample", "length": 2048}, {"name": "zscore"}],
                              source.survey).fit(source, max_samples=64)
    loader = make_loader(SeismicDataset(source, pipeline), batch_size=8, shuffle=True, workers=2)

``SeismicDataset`` and ``make_loader`` import torch; they load lazily so that ``seisinv check``
and other light users of this package start fast.
"""

from __future__ import annotations

from .augment import build_augment
from .check import check_dataset
from .flip import flip_gathers, flip_sample, flip_velocity
from .folds import assign_folds, read_folds, split_indices, write_folds
from .pipeline import Pipeline, build_pipeline
from .readers import SampleSource, open_dataset
from .sample import Sample
from .transforms import denormalize_velocity, normalize_velocity

_LAZY = {"SeismicDataset": "torch_dataset", "make_loader": "torch_dataset"}

__all__ = [
    "Pipeline",
    "Sample",
    "SampleSource",
    "SeismicDataset",
    "assign_folds",
    "build_augment",
    "build_pipeline",
    "check_dataset",
    "denormalize_velocity",
    "flip_gathers",
    "flip_sample",
    "flip_velocity",
    "make_loader",
    "normalize_velocity",
    "open_dataset",
    "read_folds",
    "split_indices",
    "write_folds",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
