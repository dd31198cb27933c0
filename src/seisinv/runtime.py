"""Where code runs: device choice, torchrun rank information and process group, progress bars."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from seisinv.errors import SeisinvError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available (this rank's GPU under torchrun), else CPU.

    Raises:
        SeisinvError: a CUDA device was asked for on a machine without one.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", dist_info().local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise SeisinvError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise SeisinvError(f"device {device!r} requested but CUDA is not available here")
    return resolved


@dataclass(frozen=True)
class DistInfo:
    """Rank information set by ``torchrun`` (single process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_info() -> DistInfo:
    """Read RANK / WORLD_SIZE / LOCAL_RANK from the environment torchrun sets."""
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun (no-op for a single process).

    Backend: NCCL for CUDA devices, gloo otherwise.
    """
    info = dist_info()
    if info.world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            # NCCL collectives run on the current device: make it this rank's GPU.
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info


def is_distributed() -> bool:
    """True inside an initialised process group with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    """Wait for every process (no-op for a single process)."""
    if is_distributed():
        dist.barrier()


def progress_bar(*extra_columns, disable: bool = False) -> Progress:
    """The standard seisinv progress bar: description, bar, n/N, elapsed, ETA, then extras.

    Use ``TextColumn("{task.fields[rate]}")``-style extras for samples/s, loss or lr.
    """
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        *extra_columns,
        disable=disable,
    )
