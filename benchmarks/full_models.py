"""One training step of every full-size model of the packaged Speed & Structure experiments.

For each model family of ``ss-caformer-unet``, ``ss-eva02-fusion`` and ``ss-eva-attention`` the
model is built exactly as the experiment's run config says (``--size full``; backbones randomly
initialised, nothing downloaded), fed a batch of the shape its data pipeline produces, and timed
for forward + backward (+ AdamW step). Each case runs in a fresh subprocess so the peak memory of
one does not leak into the next: peak RSS growth over the imports on the CPU,
``torch.cuda.max_memory_allocated`` on a GPU.

    python benchmarks/full_models.py                             # CPU, fp32, 1 step per model
    python benchmarks/full_models.py --device cuda --dtype bf16 --steps 5
    python benchmarks/full_models.py --only caformer,eva02-tiny8   # a subset
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

# Model family -> (experiment, run name) whose full-size config defines it.
CASES = {
    "caformer-b36-unet": ("ss-caformer-unet", "seed43-fold1"),
    "eva02-base6": ("ss-eva02-fusion", "base6-seed4"),
    "eva02-base8": ("ss-eva02-fusion", "base8-seed2"),
    "eva02-tiny8": ("ss-eva02-fusion", "tiny8-seed2"),
    "eva-large-dual": ("ss-eva-attention", "dual4-fold0"),
    "eva-large-single": ("ss-eva-attention", "single4-fold0"),
}


def measure(case: str, device_name: str, dtype_name: str, batch: int, steps: int) -> dict:
    """Build one case's model and time ``steps`` training steps (after one warm-up on CUDA)."""
    import tempfile
    from pathlib import Path

    import torch

    from seisinv.data import build_pipeline
    from seisinv.experiment import load_experiment
    from seisinv.experiment.runner import Context, ExperimentState
    from seisinv.models import count_parameters, create_model
    from seisinv.survey import load_survey

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    name, run_name = CASES[case]
    spec = load_experiment(name, "full")
    tmp = Path(tempfile.mkdtemp())
    survey = load_survey("speed-structure")
    ctx = Context(spec=spec, out=tmp, train_dirs=[tmp], test_dir=tmp, survey=survey,
                  device=device_name, state=ExperimentState(tmp / "state.json"), echo=print)
    config = ctx.run_config(next(r for r in spec.runs if r.name == run_name))
    shape = build_pipeline(config.data.transforms, survey).output_shape()
    device = torch.device(device_name)
    model = create_model(config.model.name, survey, **config.model.options).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gathers = torch.randn(batch, *shape, device=device)
    target = torch.rand(batch, survey.nz, survey.nx, device=device) * 3 + 1.5
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(dtype_name)

    def step() -> None:
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = (model(gathers) - target).abs().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    if device.type == "cuda":
        step()  # warm-up (cuDNN autotuning, allocator)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / steps
    # CPU seconds of this process per step: on a shared, loaded machine the wall time measures
    # the load as much as the model; the CPU time does not.
    cpu_seconds = (time.process_time() - cpu_started) / steps
    if device.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
    else:  # ru_maxrss is KiB on Linux
        peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    return {"case": case, "experiment": name, "model": config.model.name,
            "input": [batch, *shape], "params_m": count_parameters(model) / 1e6,
            "s_per_step": seconds, "cpu_s_per_step": cpu_seconds,
            "samples_per_s": batch / seconds, "peak_mib": peak_mib,
            "device": device_name, "dtype": dtype_name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated cases (default: all)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # one case, in a subprocess
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.case, args.device, args.dtype, args.batch, args.steps)))
        return
    import torch

    cases = [c for c in args.only.split(",") if c] or list(CASES)
    print(f"torch {torch.__version__}, {args.device} {args.dtype}, batch {args.batch}, "
          f"{args.steps} step(s), threads {torch.get_num_threads()}")
    print(f"{'case':20s} {'model':14s} {'input':>22s} {'params M':>9s} {'s/step':>8s} "
          f"{'cpu s/step':>10s} {'samples/s':>10s} {'peak MiB':>9s}")
    for case in cases:
        command = [sys.executable, __file__, "--case", case, "--device", args.device,
                   "--dtype", args.dtype, "--batch", str(args.batch), "--steps", str(args.steps)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            print(f"{case:20s} failed: {done.stderr.strip().splitlines()[-1]}")
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        shape = "x".join(str(v) for v in row["input"])
        print(f"{case:20s} {row['model']:14s} {shape:>22s} {row['params_m']:9.1f} "
              f"{row['s_per_step']:8.2f} {row['cpu_s_per_step']:10.1f} "
              f"{row['samples_per_s']:10.3f} {row['peak_mib']:9.0f}", flush=True)


if __name__ == "__main__":
    main()
