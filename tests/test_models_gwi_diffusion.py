"""The conditional diffusion velocity model (issue 16): DDPM schedule, DDIM sampler, mean and
spread, the training loss, and training through ``seisinv train`` with the ``diffusion`` term."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from seisinv.errors import ConfigError
from seisinv.models import create_model, rebuild_model, size_options
from seisinv.models.diffusion_vel import ddim_timesteps, noise_schedule
from seisinv.survey import OPENFWI
from seisinv.training.config import LossConfig
from seisinv.training.losses import Loss, LossContext

SURVEY = OPENFWI.replace(
    name="tiny-gwi",
    nz=24,
    nx=20,
    nt=120,
    source_x=(0.0, 100.0, 190.0),
    receiver_x=tuple(20.0 * i for i in range(10)),
)


def tiny(**options):
    torch.manual_seed(0)
    return create_model(
        "diffusion_vel", SURVEY, **{**size_options("diffusion_vel", "tiny"), **options}
    )


def layered(batch: int = 2) -> torch.Tensor:
    depth = torch.linspace(1700.0, 4300.0, SURVEY.nz)[None, :, None]
    return depth.expand(batch, SURVEY.nz, SURVEY.nx).contiguous()


def test_schedule_is_ddpm_linear_and_cosine_decreasing() -> None:
    abar = noise_schedule("linear", 1000)
    # DDPM (Ho et al. 2020): beta_1 = 1e-4, beta_T = 0.02.
    assert abar[0].item() == pytest.approx(1 - 1e-4)
    assert (abar[-2] / abar[-1]).item() == pytest.approx(1 / (1 - 0.02))
    for kind in ("linear", "cosine"):
        a = noise_schedule(kind, 100)
        assert (a[1:] < a[:-1]).all() and 0 < a[-1] < 0.01
    assert ddim_timesteps(1000, 5) == [999, 749, 500, 250, 0]
    assert ddim_timesteps(10, 50) == list(range(9, -1, -1))


@pytest.mark.parametrize("steps", [1, 3, 7])
def test_ddim_returns_samples_mean_and_spread_of_the_right_shapes(steps: int) -> None:
    model = tiny().eval()
    gathers = torch.randn(2, *SURVEY.gather_shape)
    with torch.no_grad():
        samples = model.sample(gathers, n_samples=3, steps=steps, seed=1)
        mean, spread = model.predict_with_spread(gathers, n_samples=3, steps=steps)
    assert samples.shape == (3, 2, SURVEY.nz, SURVEY.nx)
    assert mean.shape == spread.shape == (2, SURVEY.nz, SURVEY.nx)
    assert SURVEY.vmin <= samples.min() and samples.max() <= SURVEY.vmax
    assert (spread >= 0).all() and spread.sum() > 0  # different noise, different samples
    with torch.no_grad():
        torch.testing.assert_close(model(gathers), model.predict_with_spread(gathers)[0])


def test_prediction_is_float32_under_autocast() -> None:
    model = tiny().eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        velocity = model(torch.randn(2, *SURVEY.gather_shape))
        one_step = model.train()(torch.randn(2, *SURVEY.gather_shape))
    assert velocity.dtype == one_step.dtype == torch.float32


class Oracle(nn.Module):
    """A denoiser that always predicts the same clean map (normalised units)."""

    def __init__(self, x0: torch.Tensor) -> None:
        super().__init__()
        self.x0 = x0

    def forward(self, x, t, cond):
        return self.x0.expand(x.shape[0], -1, -1, -1)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_with_a_perfect_denoiser_returns_the_clean_map(eta: float) -> None:
    # The sampler's algebra: whatever the noise and step count, an exact x0 prediction must come
    # out unchanged in survey units.
    model = tiny(eta=eta).eval()
    target = layered(1)
    model.denoiser = Oracle(model.normalise(target))
    with torch.no_grad():
        samples = model.sample(torch.randn(1, *SURVEY.gather_shape), n_samples=2, steps=4)
    torch.testing.assert_close(samples, target.expand(2, 1, -1, -1), atol=1e-2, rtol=0)


def test_training_loss_falls_on_a_tiny_batch() -> None:
    model = tiny().train()
    gathers = torch.randn(2, *SURVEY.gather_shape)
    target = layered()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(1)
    losses = []
    for _ in range(25):
        optimiser.zero_grad()
        loss = model.training_loss(gathers, target)
        assert loss.shape == (2,)
        loss.mean().backward()
        optimiser.step()
        losses.append(loss.mean().item())
    assert sum(losses[-5:]) / 5 < 0.3 * sum(losses[:5]) / 5, losses


def test_diffusion_loss_term_calls_the_model_and_rebuilds() -> None:
    model = tiny()
    loss = Loss(LossConfig(terms=[{"name": "diffusion"}]), LossContext(SURVEY, None, model))
    gathers = torch.randn(2, *SURVEY.gather_shape)
    total, parts = loss(model(gathers), layered(), gathers)
    total.backward()
    assert set(parts) == {"diffusion"} and total.item() > 0
    assert model.denoiser.stem.weight.grad is not None
    rebuilt = rebuild_model(json.loads(json.dumps(model.seisinv_config)))
    assert rebuilt.state_dict().keys() == model.state_dict().keys()
    with pytest.raises(ConfigError, match="training_loss"):
        Loss(LossConfig(terms=[{"name": "diffusion"}]), LossContext(SURVEY, None, nn.Linear(1, 1)))
    with pytest.raises(ConfigError, match="only term"):
        Loss(LossConfig(terms=[{"name": "diffusion"}, {"name": "l1"}]),
             LossContext(SURVEY, None, model))
    # The training loop's call: the forward computes the per-sample loss, the term passes it on.
    per_sample = model(gathers, layered())
    assert per_sample.shape == (2,) and torch.equal(loss.per_sample(per_sample, layered(),
                                                                    gathers)[0], per_sample)
    unbound = Loss(LossConfig(terms=[{"name": "diffusion"}]), LossContext(SURVEY))
    with pytest.raises(ConfigError, match="needs the model"):
        unbound(layered(), layered(), gathers)


def tiny_run(tmp_path, survey, model: str, loss: str, extra=()):
    """Train ``model`` (its tiny size) for 2 epochs on 6 layered maps with random gathers."""
    import numpy as np
    import yaml

    from seisinv.training.config import load_config
    from seisinv.training.trainer import train

    rng = np.random.default_rng(0)
    folder = tmp_path / "FlatVel_A"
    folder.mkdir()
    n = 6
    velocity = np.linspace(1600, 4000, survey.nz, dtype=np.float32)[None, None, :, None]
    velocity = np.broadcast_to(velocity, (n, 1, survey.nz, survey.nx)).copy()
    np.save(folder / "data1.npy", rng.standard_normal((n, *survey.gather_shape), "float32"))
    np.save(folder / "model1.npy", velocity)
    (tmp_path / "survey.yaml").write_text(yaml.safe_dump(survey.to_dict()))
    config = load_config(
        "tiny-openfwi",
        [
            f"data.train=[{folder}]",
            f"data.survey={tmp_path / 'survey.yaml'}",
            "data.transforms=[{name: resample, length: 64}, {name: zscore}]",
            f"model.name={model}",
            f"model.options={json.dumps(size_options(model, 'tiny'))}",
            f"loss.terms=[{{name: {loss}, weight: 1.0}}]",
            "logging.progress=false",
            "logging.tensorboard=false",
            "epochs=2",
            "batch_size=2",
            *extra,
        ],
    )
    return train(config, tmp_path / "run")


def test_diffusion_trains_through_the_trainer(tmp_path, tiny_survey) -> None:
    import numpy as np

    from seisinv.training.run import load_run

    result = tiny_run(tmp_path, tiny_survey, "diffusion_vel", "diffusion")
    assert result.step > 0 and result.history
    losses = [entry.get("loss") for entry in result.history]
    assert all(np.isfinite(losses)), result.history
    # Validation ran on the DDIM mean of the eval-mode model (bounded maps, finite MAE).
    assert np.isfinite(result.last_val["mae"]) and result.last_val["mae"] < 3000
    # The inference side's hook on a reloaded run.
    run = load_run(tmp_path / "run", which="model", checkpoint="last", device="cpu")
    gathers = run.pipeline(torch.randn(2, *tiny_survey.gather_shape))
    with torch.no_grad():
        mean, spread = run.model.predict_with_spread(gathers)
    assert mean.shape == spread.shape == (2, tiny_survey.nz, tiny_survey.nx)


def test_learned_ensemble_trains_its_weights_through_the_trainer(tmp_path, tiny_survey) -> None:
    from seisinv.training.run import load_run

    tiny_run(tmp_path, tiny_survey, "learned_ensemble", "l1", ["optimizer.lr=1.0e-2"])
    run = load_run(tmp_path / "run", which="model", checkpoint="last", device="cpu")
    logits = run.model.logits.detach()
    assert logits.abs().max() > 0  # moved from the zero initialisation: learned jointly
    torch.testing.assert_close(run.model.weights().sum(), torch.tensor(1.0))
