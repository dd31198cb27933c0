"""Check everything seisinv uses from timm against the timm first on ``sys.path``.

A tiny training (U-Net on ``test_convnext``, EMA with warmup, the ``timm_cosine`` schedule), the
recipes' backbones (``caformer_s18``, ``convnext_small``, random init, one forward) and the EVA
fusion model. Prints ``OK`` or the problems (exit status 1). To test a version without touching
the environment::

    pip install --no-deps --target /tmp/timm_1.0.10 timm==1.0.10
    PYTHONPATH=/tmp/timm_1.0.10:src python benchmarks/train_timm_check.py

Extra arguments are ``--set``-style overrides of the tiny training (e.g. ``model.name=inversionnet
"model.options={width: 0.25}"`` to skip ``test_convnext``). Found on 2026-11-30: timm 1.0.10 is
the lowest version that passes (1.0.9 and older lack ``test_convnext``).
"""
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import timm  # noqa: E402
import torch  # noqa: E402

print("timm", timm.__version__, timm.__file__)
from seisinv.models import create_model, size_options  # noqa: E402
from seisinv.survey import OPENFWI, SPEED_STRUCTURE  # noqa: E402

problems = []
for name in ("test_convnext", "caformer_s18", "convnext_small"):
    if not timm.is_model(name):
        problems.append(f"no timm model {name}")
survey = OPENFWI.replace(name="tiny", nz=32, nx=32, nt=300, source_x=(0.0, 150.0, 310.0),
                         receiver_x=tuple(20.0 * i for i in range(16)))
for model, opts, shape in (("unet", {**size_options("unet", "full"), "pretrained": False}, (1, 5, 1000, 70)),
                           ("eva_fusion", size_options("eva_fusion", "tiny"), None),
                           ("unet", {"backbone": "convnext_small", "pretrained": False}, (1, 5, 1000, 70))):
    try:
        net = create_model(model, OPENFWI if shape else SPEED_STRUCTURE, **opts)
        if shape:
            with torch.no_grad():
                net.eval()(torch.randn(*shape))
    except Exception as exc:
        problems.append(f"{model} {opts.get('backbone', '')}: {type(exc).__name__}: {exc}"[:300])
from test_training import tiny_config, write_dataset  # noqa: E402

from seisinv.training.trainer import train  # noqa: E402

tmp = Path(tempfile.mkdtemp())
ds = write_dataset(tmp / "d", survey)
try:
    extra = sys.argv[1:]
    cfg = tiny_config(ds, *extra, "data.limit=4", "data.val_limit=2", "batch_size=2", "steps=3",
                      "schedule.name=timm_cosine", "schedule.cycles=2", "ema.enabled=true", "ema.warmup=true")
    result = train(cfg, tmp / "run")
    print("trained", result.step, "val mae", round(result.last_val["mae"], 2))
except Exception as exc:
    problems.append(f"training: {type(exc).__name__}: {exc}"[:300])
print("PROBLEMS:" if problems else "OK", json.dumps(problems, indent=1) if problems else "")
sys.exit(1 if problems else 0)
