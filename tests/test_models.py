"""Every registered architecture on two reduced surveys: shapes, bounds, gradients, rebuild, and
that it can fit one tiny batch. Also the registry's errors and the InversionNet layer plan."""

from __future__ import annotations

import json

import pytest
import torch

from seisinv.errors import ConfigError, DataError, SeisinvError
from seisinv.models import (
    count_parameters,
    create_model,
    list_models,
    model_options,
    rebuild_model,
    size_options,
)
from seisinv.models.output import bound_velocity, fit_to_grid
from seisinv.survey import OPENFWI, SPEED_STRUCTURE

# OpenFWI-like: 32 x 32 grid (m/s), 3 shots, 16 receivers, 200 time samples.
TINY_OPENFWI = OPENFWI.replace(
    name="tiny-openfwi",
    nz=32,
    nx=32,
    nt=200,
    source_x=(0.0, 150.0, 310.0),
    receiver_x=tuple(20.0 * i for i in range(16)),
)
# Speed & Structure-like: tall 48 (depth) x 20 grid at 1 m, km/s, on-disk (x, z) layout kept;
# 3 shots, 6 receivers, 256 time samples (as after resampling).
TINY_SPEED_STRUCTURE = SPEED_STRUCTURE.replace(
    name="tiny-speed-structure",
    nz=48,
    nx=20,
    nt=256,
    source_x=(0.0, 10.0, 19.0),
    shot_names=("1", "10", "19"),
    receiver_x=tuple(4.0 * i for i in range(6)),
)
SURVEYS = {"openfwi": TINY_OPENFWI, "speed-structure": TINY_SPEED_STRUCTURE}


def gathers_for(survey, batch: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *survey.gather_shape, generator=generator)


def tiny_model(name: str, survey):
    torch.manual_seed(0)
    return create_model(name, survey, **size_options(name, "tiny"))


@pytest.mark.parametrize("survey_name", sorted(SURVEYS))
@pytest.mark.parametrize("name", list_models("gathers"))
def test_model_contract(name: str, survey_name: str) -> None:
    survey = SURVEYS[survey_name]
    model = tiny_model(name, survey)
    gathers = gathers_for(survey)

    velocity = model(gathers)
    assert velocity.shape == (2, survey.nz, survey.nx)
    assert torch.isfinite(velocity).all()
    assert velocity.min() >= survey.vmin and velocity.max() <= survey.vmax
    # The two samples differ, so a model that ignores its input would fail here.
    assert not torch.allclose(velocity[0], velocity[1])

    # Gradients reach the input (so through the first layer) and every parameter.
    gathers.requires_grad_(True)
    model(gathers).mean().backward()
    assert gathers.grad is not None and gathers.grad.abs().sum() > 0
    no_grad = [key for key, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters without gradient: {no_grad}"
    gathers = gathers.detach()

    # The recorded config survives JSON and rebuilds the same architecture and outputs.
    config = json.loads(json.dumps(model.seisinv_config))
    rebuilt = rebuild_model(config)
    assert rebuilt.seisinv_config == model.seisinv_config
    assert rebuilt.state_dict().keys() == model.state_dict().keys()
    rebuilt.load_state_dict(model.state_dict())
    # Compared in training mode: batch statistics, so untrained running stats cannot hide a
    # difference by squashing both outputs to the range midpoint.
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(gathers), model(gathers))


@pytest.mark.parametrize("survey_name", sorted(SURVEYS))
@pytest.mark.parametrize("name", list_models("gathers"))
def test_model_fits_one_batch(name: str, survey_name: str) -> None:
    survey = SURVEYS[survey_name]
    model = tiny_model(name, survey).train()
    gathers = gathers_for(survey, seed=1)
    # A smooth target well inside the range: velocity increasing with depth.
    depth = torch.linspace(0.2, 0.8, survey.nz)[:, None].expand(survey.nz, survey.nx)
    target = (survey.vmin + (survey.vmax - survey.vmin) * depth).expand(2, -1, -1)
    scale = survey.vmax - survey.vmin
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(6):
        optimiser.zero_grad()
        loss = (model(gathers) - target).abs().mean() / scale
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert min(losses[-2:]) < 0.8 * losses[0], losses


def test_inversionnet_matches_openfwi_plan() -> None:
    # OpenFWI's InversionNet has 24.4 M parameters on its (5, 1000, 70) -> 70 x 70 task.
    model = create_model("inversionnet", OPENFWI)
    assert count_parameters(model) == 24_404_802
    layers = [m for m in model.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert layers[0].kernel_size == (5, 5)  # 1 x 1 code -> 5 x 5 seed, then 4 x 2x -> 80 -> 70
    assert len(layers) == 5


VARIANTS = [
    ("inversionnet", {"norm": "instance", "upsample_stages": 3, "output_activation": "tanh"}),
    ("inversionnet", {"decoder_scale": 3}),
    ("unet", {"shots_as": "width", "fusion": "sum", "backbone": "test_efficientnet"}),
    ("unet", {"backbone": "test_mambaout", "encoder_depth": 3, "fusion": "last"}),
    ("unet", {"first_stride": (4, 1), "time_reduction": 2, "output_activation": "clamp"}),
    ("eva_fusion", {"fusion": "attention", "shot_embedding": False, "split": 0}),
    ("eva_fusion", {"split": 2, "image_size": (42, 14)}),
    ("xattn", {"time_stride": 2, "max_queries": 64}),
]


@pytest.mark.parametrize(("name", "options"), VARIANTS)
def test_model_variants(name: str, options: dict) -> None:
    survey = TINY_SPEED_STRUCTURE
    torch.manual_seed(0)
    model = create_model(name, survey, **{**size_options(name, "tiny"), **options})
    velocity = model(gathers_for(survey))
    assert velocity.shape == (2, survey.nz, survey.nx)
    assert velocity.min() >= survey.vmin and velocity.max() <= survey.vmax
    assert rebuild_model(json.loads(json.dumps(model.seisinv_config))).seisinv_config == (
        model.seisinv_config
    )


@pytest.mark.parametrize("name", list_models("gathers"))
def test_model_accepts_transformed_input_lengths(name: str) -> None:
    # Data transforms resample and pad: time and receiver counts differ from the survey's.
    survey = TINY_SPEED_STRUCTURE
    model = tiny_model(name, survey).eval()
    with torch.no_grad():
        for time, receivers in ((64, 8), (333, 5)):
            gathers = torch.randn(2, survey.n_shots, time, receivers)
            assert model(gathers).shape == (2, survey.nz, survey.nx)


def test_every_model_accepts_pretrained_and_has_sizes() -> None:
    for name in list_models():
        assert model_options(name)["pretrained"] is False
        for size in ("tiny", "full"):
            assert set(size_options(name, size)) <= set(model_options(name))


def test_options_recorded_with_defaults() -> None:
    model = create_model("inversionnet", TINY_OPENFWI, width=0.25)
    config = model.seisinv_config
    assert config["name"] == "inversionnet"
    assert config["survey"] == TINY_OPENFWI.to_dict()
    assert set(config["options"]) == set(model_options("inversionnet"))
    assert config["options"]["width"] == 0.25


def test_registry_errors() -> None:
    with pytest.raises(SeisinvError, match="unknown model 'nope'"):
        create_model("nope", TINY_OPENFWI)
    with pytest.raises(ConfigError, match="no option depth"):
        create_model("inversionnet", TINY_OPENFWI, depth=3)
    with pytest.raises(ConfigError, match="output_activation"):
        create_model("inversionnet", TINY_OPENFWI, output_activation="relu")
    with pytest.raises(ConfigError, match="no pretrained weights"):
        create_model("xattn", TINY_OPENFWI, pretrained=True)
    with pytest.raises(ConfigError, match="backbone 'no_such_net'"):
        create_model("unet", TINY_OPENFWI, backbone="no_such_net")
    with pytest.raises(ConfigError, match="lacks"):
        rebuild_model({"name": "inversionnet"})
    model = create_model("inversionnet", TINY_OPENFWI, width=0.25)
    with pytest.raises(DataError, match="3 shots"):
        model(torch.randn(2, 5, 200, 16))


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "clamp"])
def test_bound_velocity_range_and_midpoint(activation: str) -> None:
    logits = torch.tensor([-1e4, 0.0, 1e4])
    velocity = bound_velocity(logits, 1.5, 4.5, activation)
    torch.testing.assert_close(velocity, torch.tensor([1.5, 3.0, 4.5]))


def test_fit_to_grid_crops_centre_and_resizes() -> None:
    maps = torch.arange(80.0 * 80).reshape(1, 1, 80, 80)
    cropped = fit_to_grid(maps, 70, 70)
    torch.testing.assert_close(cropped, maps[..., 5:75, 5:75])
    assert fit_to_grid(torch.ones(1, 1, 10, 90), 20, 70).shape == (1, 1, 20, 70)


def test_cli_lists_every_model_with_parameter_counts() -> None:
    import typer
    from typer.testing import CliRunner

    from seisinv.cli import models as models_cli

    app = typer.Typer()
    models_cli.register(app)
    app.command("unused")(lambda: None)  # two commands keep typer from collapsing to one
    result = CliRunner().invoke(app, ["models", "--size", "tiny"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in list_models():
        assert name in result.output
    tiny = create_model("inversionnet", OPENFWI, **size_options("inversionnet", "tiny"))
    assert f"{count_parameters(tiny):,}" in result.output
    shown = CliRunner().invoke(app, ["models", "--show", "unet"])
    assert "backbone" in shown.output and "convnext_tiny" in shown.output


def test_real_kaggle_sample_through_every_tiny_model(shared_data) -> None:
    # One real (5, 1000, 70) Kaggle GWI test gather on the full OpenFWI survey.
    import numpy as np

    gathers = torch.from_numpy(np.load(shared_data / "gwi_test_000039dca2.npy"))[None]
    gathers = (gathers - gathers.mean()) / gathers.std()
    for name in list_models("gathers"):
        model = tiny_model(name, OPENFWI).eval()
        with torch.no_grad():
            velocity = model(gathers)
        assert velocity.shape == (1, 70, 70)
        assert torch.isfinite(velocity).all()
        assert OPENFWI.vmin <= velocity.min() and velocity.max() <= OPENFWI.vmax


def test_output_is_float32_under_autocast() -> None:
    model = tiny_model("inversionnet", TINY_OPENFWI).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        velocity = model(gathers_for(TINY_OPENFWI))
    assert velocity.dtype == torch.float32
