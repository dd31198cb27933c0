"""The moving parts of ``seisinv generate`` as a pipeline: maps drawn ahead in worker processes,
physics on the main thread, files written by a background thread.

    maps (workers) --> physics (main thread, one call per batch) --> writer (one thread)

While the physics of batch ``b`` runs, the maps of batch ``b + 1`` are being drawn and the
gathers of batch ``b - 1`` are being written. Every map is still drawn from its own sample seed,
so which process drew it, and in which batch, does not change a byte of the output.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import numpy as np

from seisinv.errors import ArgumentError

log = logging.getLogger(__name__)

# Worker processes drawing maps, at most: OpenFWI maps take ~1 ms each on one core, so a few
# workers keep up with >= 1000 samples/s of GPU physics; Speed & Structure maps take ~0.5 s.
MAX_WORKERS = 8
# Batches whose maps are drawn ahead of the physics (and gathers waiting to be written).
LOOKAHEAD = 2
# On a GPU a job is cut into at least this many batches (when that leaves >= MIN_GPU_BATCH
# samples per batch): one batch would leave nothing to overlap the drawing and writing with.
PIPELINE_BATCHES = 4
MIN_GPU_BATCH = 64


def available_cores() -> int:
    """CPU cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def auto_workers(device_type: str, cores: int | None = None) -> int:
    """Map-drawing worker processes for ``generate --workers auto``.

    On a GPU the physics needs one core to launch kernels, so the others draw maps (at most
    ``MAX_WORKERS``; under torchrun, of this rank's share of the cores). On a CPU maps are
    drawn inline (0): the physics is the bottleneck there
    (0.15-1 CPU-s per OpenFWI sample against ~1 ms per map; 3-5 s per Speed & Structure sample
    against 0.5-1 s per map), it already uses the cores, and starting a worker (a fresh
    interpreter importing torch) cost more than it saved in ``benchmarks/generate.py``.
    """
    if device_type != "cuda":
        return 0
    cores = available_cores() if cores is None else cores
    # Under torchrun the ranks of one machine share its cores.
    cores //= max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    return max(1, min(MAX_WORKERS, cores - 1))


def parse_workers(value: int | str | None) -> int | None:
    """``workers``: a count >= 0, or "auto"/None (decided from the device)."""
    if value is None or value == "auto":
        return None
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ArgumentError(f"workers {value!r}: expected a count >= 0 or 'auto'",
                            "workers") from None
    if count < 0:
        raise ArgumentError(f"workers {count}: must be at least 0", "workers")
    return count


# ---- maps drawn ahead --------------------------------------------------------------------------
_WORKER_STATE: dict[str, Any] = {}


def _worker_init(open_pool: Callable[[Any], Any], spec: Any) -> None:
    # Each worker opens the mix pool (memory-mapped files) itself; nothing large is pickled.
    _WORKER_STATE["spec"] = spec
    _WORKER_STATE["pool"] = open_pool(spec)


def _worker_draw(draw: Callable, indices: list[int]):
    return draw(_WORKER_STATE["spec"], indices, _WORKER_STATE["pool"])


class MapBatches:
    """Velocity maps for lists of sample indices, drawn ahead of use.

    ``draw(spec, indices, pool)`` returns ``(maps (k, nz, nx) float32, families, seeds)``; it
    must depend only on ``spec`` and ``indices`` (the sample seeds), so workers reproduce
    the inline result exactly. With ``workers=0`` maps are drawn inline when asked for.
    """

    def __init__(self, draw: Callable, spec: Any, pool: Any, workers: int,
                 open_pool: Callable[[Any], Any]) -> None:
        self._draw, self._spec, self._pool, self.workers = draw, spec, pool, workers
        self._executor: ProcessPoolExecutor | None = None
        if workers > 0:
            # spawn, not fork: the parent may hold CUDA, OpenMP and progress-bar threads.
            self._executor = ProcessPoolExecutor(
                workers, mp_context=get_context("spawn"), initializer=_worker_init,
                initargs=(open_pool, spec),
            )

    def submit(self, indices: Sequence[int]) -> Callable[[], tuple[np.ndarray, list, list]]:
        """Start drawing ``indices``; returns a function that waits for and joins the result."""
        indices = list(indices)
        if self._executor is None:
            return lambda: self._draw(self._spec, indices, self._pool)
        # A few pieces per worker balance slow and fast families within a batch.
        size = max(1, math.ceil(len(indices) / (2 * self.workers)))
        futures: list[Future] = [
            self._executor.submit(_worker_draw, self._draw, indices[i:i + size])
            for i in range(0, len(indices), size)
        ]

        def result() -> tuple[np.ndarray, list, list]:
            parts = [f.result() for f in futures]
            maps = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
            return maps, [x for p in parts for x in p[1]], [x for p in parts for x in p[2]]

        return result

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> MapBatches:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---- writing overlapped with the physics -------------------------------------------------------
class BackgroundWriter:
    """Runs submitted jobs one after another, in submission order, on one background thread.

    ``submit`` blocks while ``depth`` jobs are waiting (so at most that many batches of gathers
    sit in memory) and re-raises, on the caller's thread, an error a job raised. After an error
    the remaining jobs are skipped. ``close`` waits for every submitted job.
    """

    def __init__(self, depth: int = LOOKAHEAD) -> None:
        self._jobs: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="seisinv-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    job()
            except BaseException as exc:  # handed to the caller's thread
                self._error = exc
            finally:
                self._jobs.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, job: Callable[[], None]) -> None:
        self._raise()
        self._jobs.put(job)

    def close(self) -> None:
        """Wait for every submitted job, stop the thread, and re-raise a job's error."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        self._raise()
