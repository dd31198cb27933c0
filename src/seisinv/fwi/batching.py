"""How many samples one FWI call inverts together (``FwiConfig.batch_size``)."""

from __future__ import annotations

import logging

import torch

from seisinv.survey import Survey

log = logging.getLogger(__name__)

CPU_BATCH = 4
MAX_BATCH = 64
# Bytes the propagator keeps per cell and stored time step for the backward pass (wavefield
# snapshots of float64 plus working fields), and the share of free memory FWI may take. A rough,
# deliberately generous estimate (seisinv's choice; not yet measured on a GPU).
SAFETY = 3.0
MEMORY_SHARE = 0.7


def bytes_per_sample(survey: Survey, itemsize: int = 8) -> int:
    """Rough device memory of one sample's gradient evaluation in bytes."""
    width = survey.simulation.boundary_width
    c = survey.simulation.coarsen
    cells = (survey.nz // c + 2 * width) * (survey.nx // c + 2 * width)
    stored_steps = survey.nt // max(1, survey.simulation.gradient_interval or 1)
    return int(SAFETY * survey.n_shots * cells * (stored_steps + 10) * itemsize)


def resolve_batch_size(batch_size: int | None, survey: Survey, device: torch.device,
                       itemsize: int = 8) -> int:
    """``batch_size`` when set; else ``CPU_BATCH`` on CPU, or on CUDA as many samples as fit in
    ``MEMORY_SHARE`` of the free device memory (``bytes_per_sample``), between 1 and 64."""
    if batch_size is not None:
        return batch_size
    if device.type != "cuda":
        return CPU_BATCH
    free, _ = torch.cuda.mem_get_info(device)
    n = int(MEMORY_SHARE * free // bytes_per_sample(survey, itemsize))
    n = max(1, min(MAX_BATCH, n))
    log.info("fwi batch size %d (%.1f GiB free on %s)", n, free / 2**30, device)
    return n
