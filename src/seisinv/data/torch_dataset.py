"""The torch face of the data layer: ``SeismicDataset`` and ``make_loader``."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .pipeline import Pipeline
from .readers import SampleSource

# (gathers (S, T, R), velocity (nz, nx) or None, rng) -> (gathers, velocity); see build_augment.
Augment = Callable[[np.ndarray, "np.ndarray | None", np.random.Generator],
                   "tuple[np.ndarray, np.ndarray | None]"]


class SeismicDataset(Dataset):
    """Samples of a ``SampleSource`` as tensors, augmented (optionally) then transformed.

    Each item is a dict:

    - ``gathers``: (S', T', R') float32 tensor, after ``augment`` and ``pipeline``;
    - ``velocity``: (nz, nx) float32 tensor, depth first, survey units; NaN-filled when unknown;
    - ``id`` (str), ``family`` (str, "" when unknown), ``synthetic`` (bool), ``index`` (int:
      position in ``source``), ``augment_skipped`` (bool: the augmentation made the sample
      non-finite, so it is returned unaugmented), ``flip_pending`` (bool: flipped by index with
      ``Augment.defer_flip``; the loop re-simulates its unmatched shots on the device).

    ``dataset[i]`` uses the epoch of ``set_epoch``; ``dataset[(epoch, i)]`` names it (what
    ``EpochSampler(..., with_epoch=True)`` yields, for persistent workers).

    Augmentation draws from a ``numpy.random.Generator`` seeded by ``(seed, epoch, index)``, so an
    item is the same whichever worker reads it; call ``set_epoch`` to get new draws each epoch.

    Args:
        source: from ``open_dataset``.
        pipeline: from ``build_pipeline`` (fitted when it has a z-score step).
        augment: from ``build_augment`` (training only), or None.
        seed: augmentation seed.
        indices: positions in ``source`` to use (a fold), default all.
    """

    def __init__(
        self,
        source: SampleSource,
        pipeline: Pipeline,
        *,
        augment: Augment | None = None,
        seed: int = 0,
        indices: Sequence[int] | None = None,
    ) -> None:
        self.source = source
        self.pipeline = pipeline
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self.indices = list(range(len(source))) if indices is None else [int(i) for i in indices]

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draws (call before each epoch's loader is iterated)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        # (epoch, i) keys carry the epoch to persistent DataLoader workers, which hold their own
        # copy of the dataset and never see set_epoch.
        epoch, i = key if isinstance(key, tuple) else (self.epoch, key)
        index = self.indices[i]
        sample = self.source[index]
        gathers, velocity = sample.gathers, sample.velocity
        skipped = pending = False
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, epoch, index])
            augmented, augmented_velocity = self.augment(gathers, velocity, rng)
            # An augmentation that made the sample non-finite (e.g. a scale overflow) must not
            # abort the run: this sample is used unaugmented, and the loop counts it.
            if np.isfinite(augmented).all() and (
                augmented_velocity is None or np.isfinite(augmented_velocity).all()
            ):
                gathers, velocity = augmented, augmented_velocity
                pending = bool(getattr(self.augment, "pending_flip", False))
            else:
                skipped = True
        if velocity is None:
            velocity_tensor = torch.full(self.source.survey.velocity_shape, float("nan"))
        else:
            velocity_tensor = torch.from_numpy(np.ascontiguousarray(velocity, dtype=np.float32))
        return {
            "gathers": torch.from_numpy(self.pipeline(gathers)),
            "velocity": velocity_tensor,
            "id": sample.id,
            "family": sample.family or "",
            "synthetic": bool(sample.synthetic),
            "index": index,
            "augment_skipped": skipped,
            "flip_pending": pending,
        }


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; numpy and random follow it.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)  # noqa: NPY002 - seeds third-party code using the global RNG
    random.seed(seed)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    workers: int = 0,
    seed: int = 0,
    sampler: Sampler | None = None,
    drop_last: bool = False,
    persistent: bool = False,
    prefetch_factor: int | None = None,
) -> DataLoader:
    """A ``DataLoader`` with worker processes, pinned memory on CUDA machines and seeded order.

    Args:
        dataset: usually a ``SeismicDataset``.
        batch_size: samples per batch.
        shuffle: random order (ignored when ``sampler`` is given, e.g. a DistributedSampler).
        workers: worker processes (0 reads in the main process).
        seed: seeds the shuffle order and every worker's RNGs.
        sampler: optional sampler (distributed training).
        drop_last: drop a final incomplete batch.
        persistent: keep the worker processes alive between iterations (epochs); the sampler
            must then carry the epoch (``EpochSampler(with_epoch=True)``).
        prefetch_factor: batches each worker prepares ahead (workers > 0 only; torch's default
            2 when None).
    """
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        worker_init_fn=_seed_worker,
        generator=generator,
        drop_last=drop_last,
        persistent_workers=persistent and workers > 0,
        prefetch_factor=prefetch_factor if workers > 0 else None,
    )
