"""Multi-process training: data sharding, reductions, DDP (process group: ``seisinv.runtime``).

Launched by ``torchrun`` (which sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT),
each process trains a ``DistributedDataParallel`` copy of the model on its shard of every batch;
DDP averages the gradients, so N processes with batch B each take the same step as one process
with batch N*B. Only rank 0 writes files.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from seisinv.runtime import is_distributed


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes (in place; identity for a single process)."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


class EpochSampler(Sampler):
    """Shuffled, sharded, resumable sample order: the same for a given (seed, epoch).

    Follows ``torch.utils.data.DistributedSampler``: a permutation drawn from a generator seeded
    with ``seed + epoch``, padded by repetition to a multiple of ``world_size``, rank r taking
    every ``world_size``-th index from r. ``set_epoch(epoch, start)`` also skips the first
    ``start`` indices of this rank's share, so a resumed run continues mid-epoch with exactly
    the batches an uninterrupted run would have drawn.

    With ``weights``, an epoch is ``n`` draws with replacement, index ``i`` with probability
    ``weights[i] / sum(weights)`` (``torch.multinomial`` from the same seeded generator), then
    sharded the same way.

    Args:
        n: dataset length.
        seed: base seed of the order.
        shuffle: False keeps 0..n-1 (validation).
        rank, world_size: this process's shard.
        weights: optional (n,) non-negative sampling weights.
        with_epoch: yield ``(epoch, index)`` pairs (``SeismicDataset`` keys) instead of indices,
            so persistent DataLoader workers draw each epoch's augmentation.
    """

    def __init__(
        self,
        n: int,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        weights: list[float] | None = None,
        with_epoch: bool = False,
    ) -> None:
        if n < 1:
            raise ValueError("EpochSampler needs at least one sample")
        if weights is not None and len(weights) != n:
            raise ValueError(f"EpochSampler: {len(weights)} weights for {n} samples")
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.weights = None if weights is None else torch.tensor(weights, dtype=torch.float64)
        self.with_epoch = with_epoch
        self.per_rank = -(-n // world_size)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the order of ``epoch`` and skip this rank's first ``start`` samples."""
        self.epoch, self.start = epoch, start

    def order(self) -> list[int]:
        """This rank's full index order for the current epoch (before skipping)."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.weights is not None:
            indices = torch.multinomial(
                self.weights, self.n, replacement=True, generator=generator
            ).tolist()
        elif self.shuffle:
            indices = torch.randperm(self.n, generator=generator).tolist()
        else:
            indices = list(range(self.n))
        total = self.per_rank * self.world_size
        indices += (indices * (total // self.n + 1))[: total - self.n]
        return indices[self.rank : total : self.world_size]

    def __iter__(self):
        indices = self.order()[self.start :]
        if self.with_epoch:
            return iter([(self.epoch, i) for i in indices])
        return iter(indices)

    def __len__(self) -> int:
        return max(0, self.per_rank - self.start)


def torchrun_hint(gpus: int, argv: list[str], world_size: int = 1) -> str | None:
    """What to tell a user who runs on one of several visible GPUs outside torchrun.

    Args:
        gpus: visible CUDA devices (``torch.cuda.device_count()``).
        argv: the command's arguments after ``seisinv`` (e.g. ``["train", "cfg.yaml", ...]``).
        world_size: processes of this launch (torchrun sets ``WORLD_SIZE``).

    Returns:
        One line naming the torchrun command, or None (one GPU, or already under torchrun).
    """
    if gpus <= 1 or world_size > 1:
        return None
    import shlex

    command = " ".join(shlex.quote(a) for a in argv)
    return (
        f"{gpus} GPUs are visible and this run uses one; to train on all of them run\n"
        f"  torchrun --nproc_per_node {gpus} -m seisinv.cli.main {command}\n"
        f"(batch_size is per process: the global batch becomes {gpus} x batch_size x accumulate)"
    )


def shard_indices(n: int, rank: int, world_size: int) -> list[int]:
    """Indices 0..n-1 this rank evaluates: every ``world_size``-th from ``rank``, no padding
    (so metrics summed over ranks count each sample exactly once)."""
    return list(range(rank, n, world_size))


def gather_objects(obj) -> list:
    """Every process's ``obj`` (small, JSON-like), in rank order; ``[obj]`` for one process."""
    if not is_distributed():
        return [obj]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def wrap_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``DistributedDataParallel(model)`` inside a process group, else ``model`` unchanged.

    BatchNorm layers become SyncBatchNorm on CUDA so batch statistics cover the global batch.
    """
    if not is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[device.index])
    return DistributedDataParallel(model)
