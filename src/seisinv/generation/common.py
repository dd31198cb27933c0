"""Helpers shared by the generate and simulate jobs: physics batching and throughput text."""

from __future__ import annotations

import os

import numpy as np
import torch

from seisinv.survey import Survey

# Cells (samples x shots x grid cells) simulated per physics call when no batch size is given:
# 64 OpenFWI samples or 4 Speed & Structure samples, a few hundred MB of wavefields.
CELLS_PER_BATCH = 8_000_000
# Share of the device's free memory one physics batch may take (the rest: model, other batches
# in flight, allocator slack; simulate_bytes_per_sample is an estimate).
MEMORY_FRACTION = 0.5
# GPU batches stop here: OpenFWI throughput on an H200 was flat from 512 to 2048 samples per call.
MAX_GPU_BATCH = 2048


def rate_text(samples: int, seconds: float) -> str:
    """Throughput for people: "12.3 samples/s", or "41.0 s/sample" below one per second."""
    if samples <= 0 or seconds <= 0:
        return ""
    rate = samples / seconds
    return f"{rate:.2f} samples/s" if rate >= 1 else f"{seconds / samples:.1f} s/sample"


def auto_batch(survey: Survey, per_file: int, device=None) -> int:
    """Samples per physics call.

    CPU (or no ``device``): about ``CELLS_PER_BATCH`` cells, at most 64 and ``per_file`` (larger
    CPU batches are not faster, see BENCHMARKS.md), and no more than ``MEMORY_FRACTION`` of the
    free RAM holds. CUDA: as many as ``MEMORY_FRACTION`` of the GPU's free memory holds (by
    ``simulate_bytes_per_sample``), at most ``MAX_GPU_BATCH`` (per_file does not cap it: a batch
    may span chunks; ``run_generate`` also cuts a job into >= 4 batches to keep the overlap).
    """
    from seisinv.physics.forward import simulate_bytes_per_sample

    per_sample = simulate_bytes_per_sample(survey)
    if device is not None and torch.device(device).type == "cuda":
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return max(1, min(MAX_GPU_BATCH, int(MEMORY_FRACTION * free) // per_sample))
    cells = survey.nz * survey.nx * survey.n_shots
    fits = int(MEMORY_FRACTION * free_ram_bytes()) // per_sample
    return max(1, min(per_file, 64, CELLS_PER_BATCH // cells, fits))


def free_ram_bytes() -> int:
    """Memory available to new allocations (Linux ``MemAvailable``; total RAM elsewhere)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def simulate_batch(velocity: np.ndarray, survey: Survey, device: str) -> np.ndarray:
    """(b, nz, nx) survey units -> (b, shots, nt, receivers) float32 numpy (physics call)."""
    from seisinv.physics import simulate

    return simulate(velocity, survey, device=device).detach().cpu().numpy()
