"""Helpers shared by the generate and simulate jobs: physics batching and throughput text."""

from __future__ import annotations

import numpy as np

from seisinv.survey import Survey

# Cells (samples x shots x grid cells) simulated per physics call when no batch size is given:
# 64 OpenFWI samples or 4 Speed & Structure samples, a few hundred MB of wavefields.
CELLS_PER_BATCH = 8_000_000


def rate_text(samples: int, seconds: float) -> str:
    """Throughput for people: "12.3 samples/s", or "41.0 s/sample" below one per second."""
    if samples <= 0 or seconds <= 0:
        return ""
    rate = samples / seconds
    return f"{rate:.2f} samples/s" if rate >= 1 else f"{seconds / samples:.1f} s/sample"


def auto_batch(survey: Survey, per_file: int) -> int:
    """Samples per physics call: about ``CELLS_PER_BATCH`` cells, at most 64 and ``per_file``."""
    per_sample = survey.nz * survey.nx * survey.n_shots
    return max(1, min(per_file, 64, CELLS_PER_BATCH // per_sample))


def simulate_batch(velocity: np.ndarray, survey: Survey, device: str) -> np.ndarray:
    """(b, nz, nx) survey units -> (b, shots, nt, receivers) float32 numpy (physics call)."""
    from seisinv.physics import simulate

    return simulate(velocity, survey, device=device).detach().cpu().numpy()
