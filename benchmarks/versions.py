"""Which dependency versions seisinv really works with: a probe run against candidate versions.

For each candidate directory (a ``pip install --no-deps --target DIR pkg==X`` of one package),
runs the probe below in a fresh interpreter with ``PYTHONPATH=DIR:src`` and prints ok/FAIL with
the first error line. The probe uses every timm feature seisinv relies on:

- ``timm.create_model`` / ``timm.is_model`` for each registered architecture at its ``tiny`` size
  (forward pass on a tiny survey) and for every bundled recipe's backbone (built, random init);
- ``timm.models.eva.Eva`` internals (the EVA fusion model) through the same builds;
- ``timm.utils.ModelEmaV3`` as ``training.optim.create_ema`` builds and updates it.

Usage::

    pip install --no-deps --target /tmp/v_timm_1.0.15 timm==1.0.15
    python benchmarks/versions.py /tmp/v_timm_1.0.15 /tmp/v_timm_1.0.20 ...
    python benchmarks/versions.py --probe        # the probe itself, on the current path
    python benchmarks/versions.py --src OTHER/src DIR ...   # another checkout's code
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def probe() -> None:
    from importlib import resources

    import timm
    import torch
    import yaml

    from seisinv.models import create_model, list_models, size_options
    from seisinv.survey import OPENFWI, load_survey
    from seisinv.training.config import EmaConfig
    from seisinv.training.optim import create_ema

    print(f"timm {timm.__version__}, torch {torch.__version__}")
    tiny = OPENFWI.replace(name="probe", nz=32, nx=32, nt=200, source_x=(0.0, 150.0, 310.0),
                           receiver_x=tuple(20.0 * i for i in range(16)))
    x = torch.randn(2, *tiny.gather_shape)
    for name in list_models():
        model = create_model(name, tiny, **size_options(name, "tiny"))
        assert model(x).shape == (2, tiny.nz, tiny.nx)
        ema = create_ema(model, EmaConfig(enabled=True, decay=0.9, warmup=True))
        ema.update(model, step=1)
    for config in sorted((resources.files("seisinv") / "configs").iterdir(), key=str):
        recipe = yaml.safe_load(config.read_text())
        options = dict(recipe["model"].get("options") or {})
        options.pop("pretrained", None)
        survey = load_survey(recipe.get("data", {}).get("survey", "openfwi"))
        create_model(recipe["model"]["name"], survey, **options)
        print(f"  built {config.name}: {recipe['model']['name']} {options.get('backbone', '')}")
    print("probe ok")


def run_candidate(directory: str, src: Path = SRC) -> tuple[bool, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([directory, str(src)]),
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, __file__, "--probe"], env=env, capture_output=True,
                            text=True)
    lines = (result.stdout + result.stderr).strip().splitlines()
    if result.returncode == 0:
        return True, lines[0] if lines else ""
    errors = [line for line in lines if "Error" in line or "error" in line]
    return False, (errors[-1] if errors else lines[-1] if lines else "no output")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("candidates", nargs="*", help="--target directories of one package")
    parser.add_argument("--probe", action="store_true", help="run the probe on the current path")
    parser.add_argument("--src", type=Path, default=SRC, help="seisinv source tree to probe")
    args = parser.parse_args()
    if args.probe:
        probe()
        return
    for directory in args.candidates:
        ok, line = run_candidate(directory, args.src)
        print(f"{directory:<32} {'ok  ' if ok else 'FAIL'} {line}")


if __name__ == "__main__":
    main()
