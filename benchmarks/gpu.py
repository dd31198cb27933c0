"""The GPU check: one script, one table, from physics to prediction (issue 12).

Rows (each section is timed on its own; a failing section prints FAILED and the rest go on):

- ``agree``: relative L2 of ``simulate`` on the device against the CPU, both presets;
- ``simulate``: raw samples/s per preset and batch (after a warm-up), cell-updates/s on the
  survey grid and on the padded internal grid, the effective memory bandwidth at
  ``BYTES_PER_UPDATE`` bytes per internal cell update (H200: ~4.8 TB/s), and the peak memory per
  sample against ``simulate_bytes_per_sample`` (the estimate batches are sized by);
- ``generate``: ``run_generate`` to disk (auto batch and workers) samples/s and its ratio to the
  raw ``simulate`` rate of the same preset at the same batch, measured in this run;
- ``train``: optimiser samples/s (a long run minus a short one, so start-up cancels) and mean
  GPU utilisation (nvidia-smi sampled every 0.5 s, or pynvml) for ``openfwi-unet`` and the
  Speed & Structure recipes, on data generated above;
- ``predict``: samples/s of ``inference.predict`` with the batch sized from memory;
- ``fwi``: samples x iterations / s of ``fwi.invert`` on a batch; misfit gradients per second
  with each forward model (``physics`` deepwave / openfwi, float32 / float64).

Usage::

    python3 benchmarks/gpu.py                      # on a GPU: full sizes, < 6 minutes on an H200
    python3 benchmarks/gpu.py --device cpu --quick # tiny sizes on a CPU: checks the script works
    python3 benchmarks/gpu.py --only simulate,generate   # some sections only
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import timed  # noqa: E402

# Bytes a 4th/8th-order scalar update moves at the least: read the velocity and the previous
# time level, write the next (the current level's stencil reads come from cache).
BYTES_PER_UPDATE = 12
H200_BANDWIDTH = 4.8e12

ROWS: list[tuple[str, str, str, str]] = []


def row(section: str, case: str, value: str, note: str = "") -> None:
    ROWS.append((section, case, value, note))
    print(f"  {section:<9} {case:<44} {value:>16}  {note}", flush=True)


def section(name: str):
    """Run a section; on error record one FAILED row and go on."""

    def wrap(fn):
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # a GPU check reports, it does not stop at the first error
                traceback.print_exc()
                row(name, "FAILED", type(exc).__name__, str(exc).splitlines()[0][:80])
                return None

        return run

    return wrap


class Utilisation:
    """Mean GPU utilisation (%) while the block runs: pynvml if present, else nvidia-smi."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.samples = device, []
        self._stop = threading.Event()

    def _read(self) -> float | None:
        index = self.device.index or 0
        try:
            import pynvml

            pynvml.nvmlInit()
            return float(pynvml.nvmlDeviceGetUtilizationRates(
                pynvml.nvmlDeviceGetHandleByIndex(index)).gpu)
        except Exception:
            pass
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                 "-i", str(index)], capture_output=True, text=True, timeout=5)
            return float(out.stdout.strip().splitlines()[0])
        except Exception:
            return None

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            value = self._read()
            if value is not None:
                self.samples.append(value)

    def __enter__(self) -> Utilisation:
        if self.device.type == "cuda":
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()

    @property
    def text(self) -> str:
        if self.device.type != "cuda":
            return "n/a (cpu)"
        return f"{np.mean(self.samples):.0f}% mean GPU" if self.samples else "no nvidia-smi"


def presets(quick: bool):
    """(label, survey, batches) for the raw physics rows."""
    from seisinv.survey import OPENFWI, SPEED_STRUCTURE

    fine = SPEED_STRUCTURE.replace(
        simulation=SPEED_STRUCTURE.simulation.model_copy(update={"coarsen": 1, "accuracy": 4}))
    if quick:
        ss = SPEED_STRUCTURE.replace(nt=301)
        return [("openfwi", OPENFWI.replace(nt=200), (1, 4)),
                ("ss-4m-preset", ss, (1, 2)),
                ("ss-1m", fine.replace(nt=301), (1,))]
    return [("openfwi", OPENFWI, (64, 512, 2048)),
            ("ss-4m-preset", SPEED_STRUCTURE, (1, 16, 128, 512)),
            ("ss-1m", fine, (1, 4, 16))]


def internal_cells(survey) -> int:
    """Padded internal-grid cells x internal steps x shots for one sample."""
    from seisinv.physics.grid import coarse_shape, plan_grid

    plan = plan_grid(survey, survey.vmax * survey.to_mps)
    nz, nx = coarse_shape(survey, plan.coarsen)
    t, b, left, right = plan.pad
    pad = 2 * survey.simulation.boundary_width + survey.simulation.accuracy
    steps = (survey.nt - 1) // plan.time_factor + 2
    return (nz + t + b + pad) * (nx + left + right + pad) * steps * survey.n_shots


@section("agree")
def agreement(device: torch.device, quick: bool) -> None:
    from seisinv.geology import generate_velocity
    from seisinv.physics import simulate

    if device.type == "cpu":
        row("agree", "cuda vs cpu", "n/a", "no GPU in this run")
        return
    for label, survey, _ in presets(True)[:2]:
        v = generate_velocity("curvefault", 2, survey, seed=0)
        cpu = simulate(v, survey, device="cpu").numpy()
        gpu = simulate(v, survey, device=device).cpu().numpy()
        error = np.linalg.norm(gpu - cpu) / np.linalg.norm(cpu)
        row("agree", f"{label} (nt {survey.nt}) cuda vs cpu", f"{error:.2e}", "relative L2")


@section("simulate")
def raw_simulate(device: torch.device, quick: bool) -> dict:
    from seisinv.geology import generate_velocity
    from seisinv.physics import simulate
    from seisinv.physics.forward import simulate_bytes_per_sample

    rates = {}
    for label, survey, batches in presets(quick):
        pool = generate_velocity("curvefault", 16, survey, seed=1)
        estimate = simulate_bytes_per_sample(survey)
        for batch in batches:
            v = np.concatenate([pool] * (batch // len(pool) + 1))[:batch]
            simulate(v[:1], survey, device=device)  # warm-up
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
                base = torch.cuda.memory_allocated(device)
            _, seconds = timed(lambda v=v, s=survey: simulate(v, s, device=device), device)
            rate = batch / seconds
            rates[(label, batch)] = rate
            survey_updates = survey.nz * survey.nx * survey.nt * survey.n_shots * rate
            updates = internal_cells(survey) * rate
            note = (f"{survey_updates / 1e9:.3g} G survey / {updates / 1e9:.3g} G internal "
                    f"cell-upd/s")
            if device.type == "cuda":
                bandwidth = updates * BYTES_PER_UPDATE
                peak = (torch.cuda.max_memory_allocated(device) - base) / batch
                note += (f", {bandwidth / 1e12:.2f} TB/s = {bandwidth / H200_BANDWIDTH:.0%} of "
                         f"H200, {peak / 1e6:.1f} MB/sample (est. {estimate / 1e6:.1f})")
            row("simulate", f"{label} batch {batch}", f"{rate:.2f} samples/s", note)
    return rates


@section("generate")
def generate_to_disk(device: torch.device, quick: bool, work: Path, rates: dict) -> dict:
    from seisinv.generation import GenerateSpec, run_generate
    from seisinv.generation.common import auto_batch
    from seisinv.generation.pipeline import MIN_GPU_BATCH, PIPELINE_BATCHES, auto_workers
    from seisinv.physics import simulate

    outs = {}
    cases = presets(quick)[:2]
    for (label, survey, _), n in zip(cases, (16, 2) if quick else (8192, 256), strict=True):
        families = ("flat", "curved", "flatfault", "curvefault", "style", "salt")
        spec = GenerateSpec(survey, families, n=n, seed=0, per_file=500 if not quick else 8)
        batch = min(auto_batch(survey, spec.per_file, device), n)
        if device.type == "cuda":  # run_generate's own cut into >= PIPELINE_BATCHES batches
            batch = min(batch, max(MIN_GPU_BATCH, -(-n // PIPELINE_BATCHES)))
        workers = auto_workers(device.type)
        out = work / f"gen-{label}"
        report = run_generate(spec, out, device=str(device), progress=False)
        rate = report.samples_per_second
        # Raw physics at the same batch, same maps, measured now.
        from seisinv.geology import generate_velocity

        v = generate_velocity("curvefault", batch, survey, seed=3)
        simulate(v[:1], survey, device=device)
        _, seconds = timed(lambda v=v, s=survey: simulate(v, s, device=device), device)
        raw = batch / seconds
        row("generate", f"{label} n {n} (batch {batch}, {workers} workers)",
            f"{rate:.2f} samples/s", f"{rate / raw:.0%} of raw simulate {raw:.2f}/s")
        outs[label] = out
    return outs


def _train_config(recipe: str, data: Path, quick: bool, device: torch.device, steps: int,
                  batch: int):
    from seisinv.models import size_options
    from seisinv.training.config import load_config

    overrides = [f"data.train=[{data}]", "data.val=[]", "folds.val_fold=null",
                 f"data.survey={data / 'survey.yaml'}", f"steps={steps}",
                 f"batch_size={batch}", "accumulate=1", "logging.progress=false",
                 "logging.tensorboard=false", f"device={device}", "schedule.warmup_steps=0"]
    if quick:
        config = load_config(recipe, [])
        overrides += [f"model.options={json.dumps(size_options(config.model.name, 'tiny'))}",
                      "workers=0"]
    return load_config(recipe, overrides)


@section("train")
def train_speed(device: torch.device, quick: bool, work: Path, data: dict) -> dict:
    from seisinv.training.trainer import train

    runs = {}
    recipes = [("openfwi-unet", "openfwi", 32), ("speed-structure-caformer-unet",
                                                  "ss-4m-preset", 4),
               ("speed-structure-eva-fusion", "ss-4m-preset", 4)]
    short, long = (1, 3) if quick else (5, 45)
    for recipe, preset, batch in recipes:
        if preset not in data:
            row("train", recipe, "skipped", "no generated data")
            continue
        batch = 2 if quick else batch
        out = work / f"train-{recipe}"
        train(_train_config(recipe, data[preset], quick, device, short, batch), out / "short")
        with Utilisation(device) as use:
            _, seconds_long = timed(lambda r=recipe, p=preset, b=batch, o=out: train(
                _train_config(r, data[p], quick, device, long, b), o / "long"), device)
        _, seconds_short = timed(lambda r=recipe, p=preset, b=batch, o=out: train(
            _train_config(r, data[p], quick, device, short, b), o / "short2"), device)
        rate = (long - short) * batch / max(1e-9, seconds_long - seconds_short)
        row("train", f"{recipe} batch {batch}", f"{rate:.2f} samples/s", use.text)
        runs[preset] = out / "long"
    return runs


@section("predict")
def predict_speed(device: torch.device, quick: bool, work: Path, data: dict, runs: dict) -> None:
    from seisinv.data import open_dataset
    from seisinv.inference.predict import auto_predict_batch, open_prediction_store, predict
    from seisinv.training import load_run

    for preset, run_dir in runs.items():
        run = load_run(run_dir, device=device, checkpoint="last")
        source = open_dataset(data[preset], run.survey)
        batch = auto_predict_batch(run)
        store = open_prediction_store(work / f"pred-{preset}", run, [])
        with Utilisation(device) as use:
            done, seconds = timed(lambda r=run, s=source, st=store: predict(
                r, s, st, batch=None, progress=False), device)
        row("predict", f"{preset} ({done} samples, batch {batch})",
            f"{done / seconds:.2f} samples/s", use.text)


@section("fwi")
def fwi_speed(device: torch.device, quick: bool) -> None:
    from seisinv.fwi import FwiConfig, invert, smooth_model
    from seisinv.geology import generate_velocity
    from seisinv.physics import simulate

    survey = presets(quick)[0][1]
    n, iters = (2, 2) if quick else (32, 50)
    truth = generate_velocity("curvefault", n, survey, seed=5)
    observed = simulate(truth, survey, device=device)
    initial = np.stack([smooth_model(survey, t) for t in truth])
    config = FwiConfig(iters=iters, device=str(device))
    _, seconds = timed(lambda: invert(observed, initial, survey, config), device)
    row("fwi", f"openfwi {n} samples x {iters} iters", f"{n * iters / seconds:.2f} sample-it/s",
        f"{seconds:.1f} s")
    # One misfit gradient per sample with each forward model FWI offers (physics deepwave /
    # openfwi, float32 and float64), batched: the cost of removing the modelling error.
    from seisinv.fwi.invert import fwi_forward

    velocity = torch.as_tensor(truth)
    for physics in ("deepwave", "openfwi"):
        forward = fwi_forward(survey, FwiConfig(physics=physics), device)
        for dtype in (torch.float32, torch.float64):
            v = velocity.to(device=device, dtype=dtype).requires_grad_(True)
            _, seconds = timed(lambda v=v, forward=forward: forward(v, None).pow(2).sum()
                               .backward(), device)
            row("fwi", f"gradient, physics {physics}, {str(dtype)[6:]}, batch {n}",
                f"{n / seconds:.2f} samples/s", f"{seconds:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a CPU smoke run)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the work folder here")
    parser.add_argument("--only", default="agree,simulate,generate,train,predict,fwi",
                        help="comma-separated sections to run (train/predict need generate)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    from seisinv.runtime import resolve_device

    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"seisinv GPU check: {name}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, quick={args.quick}", flush=True)
    work = args.keep or Path(tempfile.mkdtemp(prefix="seisinv-gpu-"))
    started = time.perf_counter()
    try:
        if "agree" in only:
            agreement(device, args.quick)
        rates = raw_simulate(device, args.quick) or {} if "simulate" in only else {}
        data = {}
        if only & {"generate", "train", "predict"}:
            data = generate_to_disk(device, args.quick, work, rates) or {}
        runs = train_speed(device, args.quick, work, data) or {} if only & {"train", "predict"} \
            else {}
        if "predict" in only:
            predict_speed(device, args.quick, work, data, runs)
        if "fwi" in only:
            fwi_speed(device, args.quick)
    finally:
        if args.keep is None:
            with contextlib.suppress(OSError):
                shutil.rmtree(work)
    print(f"\n== table ({name}, {time.perf_counter() - started:.0f} s)")
    print("| section | case | value | note |\n|---|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
