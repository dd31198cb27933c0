"""Wall-clock timing shared by the benchmark scripts (imported as ``timing`` when a script runs
from ``benchmarks/``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


def timed(action: Callable[[], T], device: str | torch.device = "cpu") -> tuple[T, float]:
    """Run ``action()`` and return its value and wall seconds; on CUDA the device is
    synchronised before and after, so queued kernels are counted."""
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    value = action()
    if cuda:
        torch.cuda.synchronize()
    return value, time.perf_counter() - started
