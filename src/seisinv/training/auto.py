"""``batch_size: auto`` and ``workers: auto``: values suggested from the device.

- Workers: the CPU cores available to this process (``os.sched_getaffinity``) shared among the
  processes of this machine (torchrun's ``LOCAL_WORLD_SIZE``), less one for the training loop
  itself, at most ``MAX_WORKERS``.
- Batch size on CUDA: one trial forward/backward at ``PROBE_BATCH`` samples measures the peak
  memory; the batch is the largest power of two whose extrapolated peak fits in
  ``MEMORY_SHARE`` of the free memory, at most ``MAX_BATCH`` and the samples per process.
  On a CPU: ``CPU_BATCH``.

The resolved numbers are written to the run's ``config.yaml``, so a resumed run keeps them.
"""

from __future__ import annotations

import logging
import os

import torch

log = logging.getLogger(__name__)

MAX_WORKERS = 8
PROBE_BATCH = 2
MEMORY_SHARE = 0.8
MAX_BATCH = 256
CPU_BATCH = 8


def suggest_workers(cpus: int | None = None, processes: int | None = None) -> int:
    """DataLoader workers per process for ``cpus`` cores shared by ``processes`` processes."""
    if cpus is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cpus = os.cpu_count() or 1
    if processes is None:
        processes = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    return max(0, min(MAX_WORKERS, cpus // max(1, processes) - 1))


def suggest_batch_size(
    free_bytes: int, fixed_bytes: int, bytes_per_sample: float, samples: int
) -> int:
    """Largest power of two ``b`` with ``fixed + b * per_sample <= MEMORY_SHARE * free``.

    Args:
        free_bytes: device memory free before the model was built.
        fixed_bytes: memory that does not grow with the batch (weights, optimiser, EMA).
        bytes_per_sample: memory each extra sample adds at the peak (activations, gradients).
        samples: training samples per process (no batch larger than that).

    Returns:
        At least 1, at most ``min(MAX_BATCH, samples)``.
    """
    budget = MEMORY_SHARE * free_bytes - fixed_bytes
    limit = min(MAX_BATCH, max(1, samples))
    batch = 1
    while batch * 2 <= limit and batch * 2 * max(bytes_per_sample, 1.0) <= budget:
        batch *= 2
    return batch


def probe_batch_size(step, device: torch.device, samples: int, param_bytes: int) -> int:
    """Measure one training step at ``PROBE_BATCH`` and ``1`` samples and extrapolate.

    Args:
        step: ``step(batch_size)`` runs one forward/backward at that batch size (gradients are
            discarded by the caller).
        device: a CUDA device (CPU: returns ``CPU_BATCH``).
        samples: training samples per process.
        param_bytes: bytes of the trainable parameters (AdamW adds two such buffers later).
    """
    if device.type != "cuda":
        return min(CPU_BATCH, max(1, samples))
    free, _ = torch.cuda.mem_get_info(device)
    peaks = []
    for size in (1, PROBE_BATCH):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step(size)
        torch.cuda.synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(device) - base)
    per_sample = max(1.0, (peaks[1] - peaks[0]) / (PROBE_BATCH - 1))
    # The model and EMA are already allocated (free excludes them); gradients and activations
    # are in the peaks; AdamW's two moments appear at the first optimiser step.
    fixed = max(0.0, peaks[0] - per_sample) + 2 * param_bytes
    batch = suggest_batch_size(free, int(fixed), per_sample, samples)
    log.info("batch_size auto: %d (%.1f MB per sample, %.1f GB free)", batch,
             per_sample / 2**20, free / 2**30)
    return batch
