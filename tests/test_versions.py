"""Dependency versions: the installed ones meet pyproject's lower bounds, and the timm features
seisinv uses (backbones, EVA internals, ModelEmaV3) work on the timm in use.

``.ci/run`` runs this file a second time with the declared minimum timm installed alone in front
of the path (``SEISINV_EXPECT_TIMM`` names it), so a feature newer than the bound fails CI."""

from __future__ import annotations

import json
import os
import re
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def declared_minimums() -> dict[str, str]:
    """{distribution: lower bound} from pyproject's ``dependencies`` (``name>=X`` entries)."""
    text = PYPROJECT.read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
    return dict(re.findall(r'^\s*"([A-Za-z0-9_.-]+)>=([0-9][0-9.]*)"', block, re.M))


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text.split("+")[0])[:3])


def test_every_dependency_has_a_lower_bound_and_the_installed_versions_meet_it():
    minimums = declared_minimums()
    assert {"torch", "timm", "deepwave", "pydantic", "typer", "numpy"} <= set(minimums)
    for name, minimum in minimums.items():
        installed = metadata.version(name)
        assert _version_tuple(installed) >= _version_tuple(minimum), (name, installed, minimum)


def test_timm_in_use_is_the_one_ci_asked_for():
    import timm

    wanted = os.environ.get("SEISINV_EXPECT_TIMM")
    if not wanted:
        pytest.skip("SEISINV_EXPECT_TIMM is set only by .ci/run's minimum-timm pass")
    assert timm.__version__ == wanted
    assert wanted == declared_minimums()["timm"]


def _tiny_dataset(root: Path, survey, n: int = 4) -> Path:
    rng = np.random.default_rng(0)
    z = np.linspace(0.0, 1.0, survey.nz)[None, None, :, None]
    velocity = (rng.uniform(1800, 2500, (n, 1, 1, 1)) + 1500 * z).astype(np.float32)
    velocity = np.broadcast_to(velocity, (n, 1, survey.nz, survey.nx)).copy()
    folder = root / "FlatVel_A"
    folder.mkdir(parents=True)
    np.save(folder / "data1.npy", rng.standard_normal((n, *survey.gather_shape), np.float32))
    np.save(folder / "model1.npy", velocity)
    (root / "survey.yaml").write_text(yaml.safe_dump(survey.to_dict()))
    return folder


def test_tiny_training_with_a_timm_backbone_and_ema(tmp_path, tiny_survey):
    from seisinv.models import size_options
    from seisinv.training.config import load_config
    from seisinv.training.trainer import train

    folder = _tiny_dataset(tmp_path / "data", tiny_survey)
    config = load_config("tiny-openfwi", [
        f"data.train=[{folder}]", "data.val=[]", "folds.val_fold=null",
        f"data.survey={tmp_path / 'data' / 'survey.yaml'}",
        "data.transforms=[{name: resample, length: 64}, {name: zscore}]",
        "model.name=unet", f"model.options={json.dumps(size_options('unet', 'tiny'))}",
        "batch_size=2", "steps=2", "ema.enabled=true", "ema.warmup=true",
        "logging.progress=false", "logging.tensorboard=false", "logging.every_steps=1",
    ])
    result = train(config, tmp_path / "run")
    losses = [entry["loss"] for entry in result.history]
    assert len(losses) == 2 and all(np.isfinite(losses))


def test_eva_fusion_builds_and_runs_on_the_timm_in_use(tiny_survey):
    from seisinv.models import create_model, size_options

    torch.manual_seed(0)
    model = create_model("eva_fusion", tiny_survey, **size_options("eva_fusion", "tiny"))
    velocity = model(torch.randn(1, *tiny_survey.gather_shape))
    assert velocity.shape == (1, tiny_survey.nz, tiny_survey.nx)
    assert torch.isfinite(velocity).all()
