"""Benchmark the model zoo: parameters, forward and forward+backward time, peak memory.

For each model and survey the full-size input is used: OpenFWI gathers (5, 1000, 70) and Speed &
Structure gathers after resampling to 2048 time samples (5, 2048, 32 receivers, the 31 traces
padded to 32). Times are milliseconds per sample (median over repeats after one warm-up). Peak
memory is the process's peak RSS on the CPU (each case runs in a fresh subprocess so peaks do not
leak between cases), less the RSS after importing torch and timm, and
``torch.cuda.max_memory_allocated`` on a GPU.

    python benchmarks/models.py                        # every model, both surveys, full sizes
    python benchmarks/models.py --quick                # tiny sizes, one repeat: a smoke run
    python benchmarks/models.py --models unet,xattn --surveys openfwi --batch 4
    python benchmarks/models.py --json results.json    # also write the rows as JSON
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

# Input shape per sample (shots, time, receivers) after the standard data transforms.
INPUT_SHAPES = {"openfwi": (5, 1000, 70), "speed-structure": (5, 2048, 32)}


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str, survey_name: str, device_name: str, size: str, batch: int, repeats: int):
    """Time one (model, survey, device) case in this process; returns a result dict."""
    import torch

    from seisinv.models import count_parameters, create_model, size_options
    from seisinv.survey import load_survey

    torch.manual_seed(0)
    device = torch.device(device_name)
    base_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # after imports
    options = size_options(name, size) if size != "default" else {}
    model = create_model(name, load_survey(survey_name), **options).to(device)
    gathers = torch.randn(batch, *INPUT_SHAPES[survey_name], device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def forward() -> None:
        with torch.no_grad():
            model.eval()(gathers)

    def forward_backward() -> None:
        model.train()
        model.zero_grad(set_to_none=True)
        model(gathers).mean().backward()

    timings = {}
    for label, step in (("forward", forward), ("forward_backward", forward_backward)):
        step()  # warm-up (allocator, cuDNN autotuning)
        _sync(device)
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            _sync(device)
            samples.append((time.perf_counter() - start) * 1000 / batch)
        timings[label] = statistics.median(samples)
    if device.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        # Linux reports KiB; subtract the interpreter + torch + timm baseline.
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base_mib
    return {
        "model": name,
        "survey": survey_name,
        "device": device_name,
        "size": size,
        "batch": batch,
        "parameters": count_parameters(model),
        "forward_ms": timings["forward"],
        "forward_backward_ms": timings["forward_backward"],
        "peak_mib": peak_mib,
    }


def run_case(args, name: str, survey: str, device: str) -> dict:
    """Run one case in a fresh interpreter so the CPU peak RSS is that case's own."""
    command = [
        sys.executable,
        __file__,
        "--one",
        f"{name}:{survey}:{device}",
        "--size",
        args.size,
        "--batch",
        str(args.batch),
        "--repeats",
        str(args.repeats),
        "--threads",
        str(args.threads),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        error = (done.stderr.strip().splitlines() or ["failed"])[-1]
        return {"model": name, "survey": survey, "device": device, "error": error}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="", help="comma-separated names (default: all)")
    parser.add_argument("--surveys", default="openfwi,speed-structure")
    parser.add_argument("--devices", default="auto", help="cpu, cuda or auto (cpu + cuda if any)")
    parser.add_argument("--size", default="default", choices=("default", "tiny", "full"))
    parser.add_argument("--batch", type=int, default=2, help="samples per step (>= 2: BatchNorm)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat")
    parser.add_argument("--json", default="", help="also write the rows to this JSON file")
    parser.add_argument("--one", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.size, args.repeats = "tiny", 1

    import torch

    torch.set_num_threads(args.threads)
    if args.one:
        name, survey, device = args.one.split(":")
        print(json.dumps(measure(name, survey, device, args.size, args.batch, args.repeats)))
        return

    from rich.console import Console
    from rich.table import Table

    from seisinv.models import list_models

    names = [n for n in args.models.split(",") if n] or list_models("gathers")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if args.devices != "auto":
        devices = args.devices.split(",")
    table = Table(title=f"model zoo benchmark (size={args.size}, batch={args.batch}, ms/sample)")
    for column in ("model", "survey", "device", "params", "fwd ms", "fwd+bwd ms", "peak MiB"):
        left = column in ("model", "survey")
        table.add_column(column, justify="left" if left else "right", no_wrap=left)
    rows = []
    for survey in args.surveys.split(","):
        for name in names:
            for device in devices:
                row = run_case(args, name, survey, device)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                if "error" in row:
                    table.add_row(name, survey, device, "", "", "", row["error"][:40])
                    continue
                table.add_row(
                    name,
                    survey,
                    device,
                    f"{row['parameters']:,}",
                    f"{row['forward_ms']:.1f}",
                    f"{row['forward_backward_ms']:.1f}",
                    f"{row['peak_mib']:.0f}",
                )
    Console().print(table)
    if args.json:
        from seisinv.io import write_json

        write_json(args.json, rows)


if __name__ == "__main__":
    main()
