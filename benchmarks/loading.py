"""Loading speed of Speed & Structure-size samples: raw ``np.load`` vs the seisinv data path.

Writes ``--samples`` random samples in the Speed & Structure layout (5 x (10001, 31) float32 shot
files + a (300, 1259) float64 ``vp_model.npy``: ~6 MB each) to a temporary folder, then reports
samples/s for

- ``np.load``: the six files of each sample, nothing else (the floor any reader pays);
- ``read``: ``open_dataset(...)[i]`` (load + validation + axis swap of the velocity);
- ``pipeline``: ``read`` + resampling 10001 -> 2048 time steps;
- ``loader wN``: ``make_loader(SeismicDataset(...), batch_size, workers=N)`` over all samples
  (N = 0, 1, 2), the path training uses.

The files were just written, so they are read from the page cache: this measures the CPU cost
of loading, not the disk. Besides wall-clock samples/s, each line gives the CPU time spent per
sample (this process plus its finished worker processes): on a machine shared with other jobs the
wall clock measures the contention, while ``cores / CPU time per sample`` bounds what the data
path can deliver on an idle machine. Usage::

    python benchmarks/loading.py               # 50 samples, 2 passes each
    python benchmarks/loading.py --samples 20 --passes 1
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from seisinv.data import SeismicDataset, build_pipeline, make_loader, open_dataset
from seisinv.data.writers import write_sample_folder
from seisinv.survey import SPEED_STRUCTURE


def write_fixture(root: Path, samples: int) -> None:
    rng = np.random.default_rng(0)
    survey = SPEED_STRUCTURE
    for i in range(samples):
        gathers = rng.standard_normal(survey.gather_shape, dtype=np.float32)
        velocity = rng.uniform(survey.vmin, survey.vmax, survey.velocity_shape)
        write_sample_folder(root, f"sample{i:03d}", gathers, velocity, survey)


def cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (DataLoader workers), in seconds."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def rate(label: str, count: int, seconds: float, cpu: float | None = None) -> None:
    line = f"{label:<30} {count / seconds:7.1f} samples/s  {seconds / count * 1e3:6.1f} ms wall"
    if cpu is not None:
        line += f"  {cpu / count * 1e3:6.1f} ms CPU per sample"
    print(line)


def best_of(passes: int, run) -> tuple[float, float]:
    """(best wall seconds, CPU seconds of that pass)."""
    results = []
    for _ in range(passes):
        cpu = cpu_seconds()
        wall = run()
        results.append((wall, cpu_seconds() - cpu))
    return min(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--passes", type=int, default=2, help="repeat each and keep the best")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--length", type=int, default=2048, help="time steps after resampling")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory(prefix="seisinv-loading-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        write_fixture(root, args.samples)
        print(f"wrote {args.samples} samples in {time.perf_counter() - start:.1f} s to {root}")
        source = open_dataset(root, SPEED_STRUCTURE, require_velocity=True)
        pipeline = build_pipeline([{"name": "resample", "length": args.length}], source.survey)
        n = len(source)
        files = [[*ref.shot_paths, ref.velocity_path] for ref in source.refs]

        def raw() -> float:
            t = time.perf_counter()
            for paths in files:
                for path in paths:
                    np.load(path)
            return time.perf_counter() - t

        def read() -> float:
            t = time.perf_counter()
            for i in range(n):
                source[i]
            return time.perf_counter() - t

        def transformed() -> float:
            t = time.perf_counter()
            for i in range(n):
                pipeline(source[i].gathers)
            return time.perf_counter() - t

        rate("np.load (6 files)", n, *best_of(args.passes, raw))
        rate("read (open_dataset[i])", n, *best_of(args.passes, read))
        rate(f"read + resample {args.length}", n, *best_of(args.passes, transformed))
        dataset = SeismicDataset(source, pipeline)
        for workers in (0, 1, 2):
            loader = make_loader(dataset, batch_size=args.batch_size, workers=workers)
            runs = []
            for _ in range(args.passes):
                cpu = cpu_seconds()
                runs.append((*timed_epoch(loader, args.length), cpu_seconds() - cpu))
            total, first, first_size, cpu = min(runs)
            rate(f"loader workers={workers}", n, total, cpu)
            # Workers start (fork, first batch) once per epoch; on a real epoch of thousands of
            # samples that cost vanishes, so report the rate after the first batch too.
            rate(f"  after first batch ({first:.2f} s)", n - first_size, total - first)


def timed_epoch(loader, length: int) -> tuple[float, float, int]:
    """(epoch seconds, seconds to the first batch, size of the first batch)."""
    start = time.perf_counter()
    first = first_size = None
    for batch in loader:
        assert batch["gathers"].shape[1:] == (5, length, 31)
        if first is None:
            first, first_size = time.perf_counter() - start, len(batch["id"])
    return time.perf_counter() - start, first, first_size


if __name__ == "__main__":
    main()
