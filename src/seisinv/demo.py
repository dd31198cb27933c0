"""``seisinv demo``: the whole workflow on a laptop CPU, from nothing to an HTML report.

Stages (each one is the library code the matching command runs, and each is skipped when a
previous run of the demo into the same folder finished it):

1. ``generate`` - synthetic OpenFWI-survey datasets (train, validation, held-out test) from several
   velocity families (``seisinv.generation.run_generate``, as ``seisinv generate``).
2. ``train``    - the compact ``tiny-openfwi`` recipe (``seisinv.training.train``, as
   ``seisinv train``); resumes from ``checkpoints/last`` when interrupted.
3. ``predict``  - the held-out test set with flip test-time augmentation (as ``seisinv predict``).
4. ``baselines``- training-mean map and 1-D v(z) profile written as prediction directories.
5. ``evaluate`` - MAE / RMSE / MAPE / SSIM of the model and both baselines (as ``seisinv evaluate``).
6. ``qc``       - physics check: forward-model predictions, compare with the test gathers
   (as ``seisinv qc``), for the model and the v(z) baseline.
7. ``report``   - figures and ``report/index.html`` (as ``seisinv report``).

Output folder layout::

    OUT/data/{train,val,test}/   OUT/run/   OUT/predictions/{model,mean-map,depth-profile}/
    OUT/report/index.html        OUT/summary.json (metrics, timings)   OUT/stages.json
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from seisinv.errors import ArgumentError
from seisinv.io import write_json

FAMILIES = ("flat", "curved", "flatfault", "curvefault")
RECIPE = "tiny-openfwi"
BASELINE_NAMES = ("mean-map", "depth-profile")
# Samples per generated chunk: the unit an interrupted generation resumes from (and the unit
# split between generation processes).
PER_FILE = 64
# Generation processes on a CPU (one thread each).
MAX_WORKERS = 2
MIN_SAMPLES_FOR_PROCESSES = 128


@dataclass(frozen=True)
class DemoSize:
    """How much work the demo does.

    Attributes:
        n_train, n_val, n_test: generated samples per split (OpenFWI survey, 70 x 70).
        epochs: training epochs of the tiny recipe.
        batch_size: training batch size.
        qc_samples: test samples forward-modelled by the physics check (per prediction dir).
        report_samples: samples drawn in the report.
    """

    n_train: int
    n_val: int
    n_test: int
    epochs: int
    batch_size: int
    qc_samples: int
    report_samples: int


SIZES: dict[str, DemoSize] = {
    # For the test suite: seconds, proves the plumbing, not the learning.
    "tiny": DemoSize(n_train=12, n_val=4, n_test=6, epochs=1, batch_size=6, qc_samples=2,
                     report_samples=2),
    # The README's demo: a few minutes on a 2-core CPU; the model beats both baselines.
    "small": DemoSize(n_train=480, n_val=48, n_test=64, epochs=20, batch_size=16, qc_samples=16,
                      report_samples=4),
}


@dataclass
class DemoResult:
    """What a demo run produced: paths, metrics per prediction directory, physics-check
    summaries (``{name: {"median_misfit", "n_flagged", "n"}}``), timings in seconds."""

    out: Path
    report: Path
    metrics: dict[str, dict]
    qc: dict[str, dict]
    seconds: dict[str, float]
    model_beats_baselines: bool


class _Stages:
    """Runs named stages once: ``stages.json`` records the finished ones and their durations."""

    def __init__(self, out: Path, echo: Callable[[str], None]) -> None:
        import json

        self.path = out / "stages.json"
        self.done: dict[str, dict] = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.echo = echo
        self.count = 0

    def run(self, name: str, title: str, action: Callable[[], dict | None]) -> dict:
        self.count += 1
        if name in self.done:
            self.echo(f"[{self.count}/7] {title}: done in an earlier run, skipped")
            return self.done[name]
        self.echo(f"[{self.count}/7] {title}")
        started = time.perf_counter()
        info = action() or {}
        info["seconds"] = round(time.perf_counter() - started, 2)
        self.done[name] = info
        write_json(self.path, self.done)
        return info


def run_demo(
    out: str | Path = "seisinv-demo",
    size: str = "small",
    device: str = "auto",
    echo: Callable[[str], None] = print,
    progress: bool = True,
) -> DemoResult:
    """Run the whole demo into ``out`` (resumable: finished stages are skipped).

    Args:
        out: output folder.
        size: "tiny" (seconds; tests) or "small" (minutes; the real demo).
        device: "auto", "cpu", "cuda"... for the physics, training and prediction.
        echo: receives one line per stage banner and summary (e.g. ``rich.console.Console.print``).
        progress: show progress bars.

    Returns:
        A ``DemoResult``; ``summary.json`` in ``out`` holds the same.
    """
    if size not in SIZES:
        raise ArgumentError(f"size {size!r}: use one of {', '.join(SIZES)}", "size")
    spec = SIZES[size]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_same_size(out, size)
    stages = _Stages(out, echo)
    started = time.perf_counter()

    import torch

    from seisinv.runtime import resolve_device

    # One thread per process: on small shared VMs two OpenMP threads per process were measured
    # 10-300x slower at times (docs/physics notes); generation instead runs one single-threaded
    # process per core.
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    on_cpu = resolve_device(device).type == "cpu"
    workers = min(MAX_WORKERS, os.cpu_count() or 1) if on_cpu else 1
    try:
        return _run_stages(out, spec, size, device, workers, stages, echo, progress, started)
    finally:
        torch.set_num_threads(threads_before)


def _run_stages(
    out: Path,
    spec: DemoSize,
    size: str,
    device: str,
    workers: int,
    stages: _Stages,
    echo: Callable[[str], None],
    progress: bool,
    started: float,
) -> DemoResult:
    """The seven stages of ``run_demo`` (see the module docstring)."""

    from seisinv.survey import OPENFWI

    survey = OPENFWI
    data_dir, run_dir, pred_dir = out / "data", out / "run", out / "predictions"
    splits = {"train": (spec.n_train, 1), "val": (spec.n_val, 2), "test": (spec.n_test, 3)}

    def generate() -> dict:
        from seisinv.generation import GenerateSpec, Shard
        from seisinv.generation.job import prepare_output

        jobs = []
        for split, (n, seed) in splits.items():
            job = GenerateSpec(survey=survey, families=FAMILIES, n=n, seed=seed, per_file=PER_FILE)
            prepare_output(job, data_dir / split)  # once, before any worker starts
            shards = workers if job.n_chunks >= 2 * workers else 1
            jobs += [(job, data_dir / split, Shard(k, shards)) for k in range(1, shards + 1)]
        _run_generate_jobs(jobs, workers, device, progress, echo)
        return {split: n for split, (n, _) in splits.items()}

    stages.run("generate", f"generate synthetic data: {', '.join(FAMILIES)} "
               f"({spec.n_train} train / {spec.n_val} val / {spec.n_test} test)", generate)

    def train() -> dict:
        from seisinv.training import load_config
        from seisinv.training import train as train_run

        overrides = [
            f"data.train=[{data_dir / 'train'}]",
            f"data.val=[{data_dir / 'val'}]",
            f"epochs={spec.epochs}",
            f"batch_size={spec.batch_size}",
            f"device={device}",
            f"logging.progress={str(progress).lower()}",
            "logging.tensorboard=false",
            "checkpoint.best_metric=mae",
        ]
        config = load_config(RECIPE, overrides)
        resume = (run_dir / "checkpoints" / "last").exists()
        result = train_run(config, run_dir, resume=resume, echo=None)
        return {"steps": result.step, "best_val_mae": result.best}

    stages.run("train", f"train the {RECIPE} recipe for {spec.epochs} epoch(s)", train)

    def predict_test() -> dict:
        from seisinv.data import open_dataset
        from seisinv.inference.predict import open_prediction_store, predict
        from seisinv.training import load_run

        run = load_run(run_dir, device=device)
        source = open_dataset(data_dir / "test", run.survey)
        store = open_prediction_store(pred_dir / "model", run, ["flip"])
        return {"predicted": predict(run, source, store, tta=["flip"], batch=16, progress=progress)}

    stages.run("predict", "predict the held-out test set (flip TTA)", predict_test)

    def fit_baselines() -> dict:
        from seisinv.data import open_dataset
        from seisinv.evaluation import baselines
        from seisinv.evaluation.truth import iter_truth

        maps = baselines.fit_baselines(
            (r.velocity for r in iter_truth(data_dir / "train", survey)), survey
        )
        test_ids = open_dataset(data_dir / "test", survey).ids
        for name in BASELINE_NAMES:
            baselines.write_baseline(pred_dir / name, survey, maps[name], test_ids, name)
        return {}

    stages.run("baselines", "baselines: training-mean map and 1-D v(z) profile", fit_baselines)

    from seisinv.evaluation.evaluate import evaluate_store
    from seisinv.evaluation.truth import load_truth
    from seisinv.inference.store import PredictionStore

    stores = {name: PredictionStore(pred_dir / name) for name in ("model", *BASELINE_NAMES)}
    truth = load_truth(data_dir / "test", survey)

    def evaluate() -> dict:
        results = [evaluate_store(s, list(truth.values()), name) for name, s in stores.items()]
        write_json(out / "metrics.json", [r.to_dict() for r in results])
        return {r.name: r.overall for r in results}

    metrics = stages.run("evaluate", "evaluate the model and the baselines on the test set", evaluate)
    metrics = {k: v for k, v in metrics.items() if k != "seconds"}

    def physics_check() -> dict:
        from seisinv.data import open_dataset
        from seisinv.evaluation.qc import qc_store, write_qc

        source = open_dataset(data_dir / "test", survey)
        ids = source.ids[: spec.qc_samples]
        summary = {}
        for name in ("model", "depth-profile"):
            result = qc_store(stores[name], source, device=device, ids=ids, progress=progress)
            write_qc(result, pred_dir / name)
            summary[name] = {"median_misfit": result["median_misfit"],
                             "n_flagged": result["n_flagged"], "n": len(result["samples"])}
        return summary

    qc = stages.run("qc", f"physics check: forward-model {spec.qc_samples} predictions", physics_check)

    def report() -> dict:
        from seisinv.evaluation.report import report_for

        index = report_for(
            pred_dir / "model", truth=data_dir / "test",
            predictions=[pred_dir / n for n in BASELINE_NAMES], data=data_dir / "test",
            out=out / "report", n_samples=spec.report_samples, run=run_dir,
            title=f"seisinv demo ({size})",
            notes=[f"model = {RECIPE} trained on {spec.n_train} synthetic samples "
                   f"({', '.join(FAMILIES)}), predicted with flip TTA; baselines ignore the data."],
        )
        return {"index": str(index)}

    report_info = stages.run("report", "write the HTML report", report)

    seconds = {k: v.get("seconds", 0.0) for k, v in stages.done.items()}
    seconds["total_this_call"] = round(time.perf_counter() - started, 2)
    beats = all(metrics["model"]["mae"] < metrics[b]["mae"] for b in BASELINE_NAMES)
    result = DemoResult(out=out, report=Path(report_info["index"]), metrics=metrics,
                        qc={k: v for k, v in qc.items() if k != "seconds"}, seconds=seconds,
                        model_beats_baselines=beats)
    write_json(out / "summary.json", {
        **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(result).items()},
        "size": size, "threshold": _qc_threshold(),
    })
    return result


def _qc_threshold() -> float:
    from seisinv.evaluation.qc import DEFAULT_THRESHOLD

    return DEFAULT_THRESHOLD


def _check_same_size(out: Path, size: str) -> None:
    """Refuse to resume a demo folder made with another ``size`` (its stages would not match)."""
    import json

    marker = out / "demo.json"
    if marker.exists():
        earlier = json.loads(marker.read_text()).get("size")
        if earlier != size:
            raise ArgumentError(
                f"out {out}: holds a demo of size {earlier!r}; rerun with that size to resume "
                "it, or choose another output", "out"
            )
    else:
        write_json(marker, {"size": size})


def _generate_worker(job, out: Path, shard, device: str) -> int:
    """One generation process: single-threaded torch, no progress bar; returns samples written."""
    import torch

    from seisinv.generation import run_generate

    torch.set_num_threads(1)
    return run_generate(job, out, device=device, shard=shard, progress=False).written


def _run_generate_jobs(jobs: list, workers: int, device: str, progress: bool, echo) -> None:
    """Run ``(spec, out, shard)`` generation jobs in-process (1 worker) or in spawned processes."""
    from seisinv.generation import run_generate
    from seisinv.runtime import progress_bar

    total = sum(len(job.chunk_range(c)) for job, _, shard in jobs
                for c in shard.chunks(job.n_chunks))
    # Starting a process costs seconds (torch import): only worth it for real work.
    if workers <= 1 or len(jobs) == 1 or total < MIN_SAMPLES_FOR_PROCESSES:
        for job, out, shard in jobs:
            run_generate(job, out, device=device, shard=shard, progress=progress)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool, \
            progress_bar(disable=not progress) as bar:
        task = bar.add_task(f"generate ({workers} processes)", total=total)
        futures = {pool.submit(_generate_worker, job, out, shard, device): (job, shard)
                   for job, out, shard in jobs}
        for future in as_completed(futures):
            job, shard = futures[future]
            future.result()  # re-raises a worker's error here
            bar.advance(task, sum(len(job.chunk_range(c)) for c in shard.chunks(job.n_chunks)))
