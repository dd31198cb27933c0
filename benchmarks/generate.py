"""`seisinv generate` to disk on the CPU: samples/s of this checkout against another one.

Times ``run_generate`` (a preset, default openfwi, six families, device cpu) in fresh interpreters, the
two source trees alternating so machine load drifts affect both alike, and prints each run and
the medians. With ``--workers`` the current tree also runs with that many map workers.

Usage::

    git archive <commit> src | tar -x -C /tmp/before
    python benchmarks/generate.py --before /tmp/before/src --n 24 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

SRC = Path(__file__).resolve().parents[1] / "src"

CHILD = """
import inspect, sys, time, torch
torch.set_num_threads({threads})
from seisinv.generation import GenerateSpec, run_generate
from seisinv.survey import load_survey
spec = GenerateSpec(load_survey("{survey}"), ("flat", "curved", "flatfault", "curvefault", "style", "salt"),
                    n={n}, seed=0, per_file={per_file})
kwargs = dict(device="cpu", progress=False)
if {workers} is not None and "workers" in inspect.signature(run_generate).parameters:
    kwargs["workers"] = {workers}
started, cpu = time.perf_counter(), time.process_time()
report = run_generate(spec, sys.argv[1], **kwargs)
print(report.written / (time.perf_counter() - started),
      (time.process_time() - cpu) / report.written)
"""


def run(src: Path, n: int, per_file: int, threads: int, workers: int | None,
        survey: str = "openfwi") -> tuple[float, float]:
    """(samples/s wall, CPU seconds per sample of the generating process, all its threads)."""
    with tempfile.TemporaryDirectory() as out:
        code = CHILD.format(n=n, per_file=per_file, threads=threads, workers=workers,
                            survey=survey)
        env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(threads)}
        result = subprocess.run([sys.executable, "-c", code, str(Path(out) / "g")], env=env,
                                capture_output=True, text=True, check=True)
        rate, cpu = result.stdout.strip().splitlines()[-1].split()
        return float(rate), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the other checkout's src/")
    parser.add_argument("--survey", default="openfwi", help="preset name")
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--per-file", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="also run with N workers")
    parser.add_argument("--also", action="append", default=[], metavar="LABEL=SRC",
                        help="another source tree to time alongside")
    args = parser.parse_args()
    cases = {"before": (args.before, None), "after (auto)": (SRC, None)}
    for item in args.also:
        label, _, src = item.partition("=")
        cases[label] = (Path(src), None)
    if args.workers is not None:
        cases[f"after ({args.workers} workers)"] = (SRC, args.workers)
    rates: dict[str, list[float]] = {k: [] for k in cases}
    cpus: dict[str, list[float]] = {k: [] for k in cases}
    for repeat in range(args.repeats):
        for label, (src, workers) in cases.items():
            rate, cpu = run(src, args.n, args.per_file, args.threads, workers, args.survey)
            rates[label].append(rate)
            cpus[label].append(cpu)
            print(f"  run {repeat + 1} {label:<20} {rate:.3f} samples/s, {cpu:.3f} CPU-s/sample",
                  flush=True)
    print(f"{args.survey}, n {args.n}, per_file {args.per_file}, {args.threads} torch thread(s):")
    for label, values in rates.items():
        print(f"  {label:<20} median {median(values):.3f} samples/s, "
              f"{median(cpus[label]):.3f} CPU-s/sample (runs: "
              f"{', '.join(f'{v:.3f}' for v in values)})")


if __name__ == "__main__":
    main()
