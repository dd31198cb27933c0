"""The physics loss term with the GWI recipes' shape-changing transforms (issue 16): the torch
version of every pipeline step equals the numpy step, and the data misfit of the true model is
zero in the network input's domain."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seisinv.data import build_pipeline
from seisinv.survey import OPENFWI
from seisinv.training.losses import LOSSES, LossContext, differentiable_pipeline

SURVEY = OPENFWI.replace(
    name="mini",
    nz=16,
    nx=16,
    nt=120,
    source_x=(0.0, 150.0),
    receiver_x=tuple(10.0 * i for i in range(15)),
)

PIPELINES = [
    [{"name": "resample", "length": 60}, {"name": "zscore"}],
    [{"name": "crop", "length": 100, "start": 10}, {"name": "pad_receivers", "to": 18}],
    [{"name": "pad_receivers", "to": 16, "mode": "edge"}, {"name": "time_to_width", "chunks": 4}],
    [
        {"name": "resample", "length": 50},
        {"name": "shots_side_by_side"},
        {"name": "clip", "low": -1.0, "high": 1.0},
    ],
    [{"name": "scale", "factor": 3.0}, {"name": "crop", "length": 64}, {"name": "zscore"}],
]


def fitted(steps, sample: np.ndarray):
    pipeline = build_pipeline(steps, SURVEY)
    pipeline.fit([type("S", (), {"gathers": sample})()])
    return pipeline


@pytest.mark.parametrize("steps", PIPELINES)
def test_torch_pipeline_equals_the_numpy_pipeline(steps) -> None:
    rng = np.random.default_rng(0)
    gathers = rng.standard_normal((2, *SURVEY.gather_shape)).astype(np.float32)
    pipeline = fitted(steps, gathers[0])
    expected = pipeline(gathers)
    got = differentiable_pipeline(pipeline)(torch.from_numpy(gathers))
    assert got.shape == expected.shape == (2, *pipeline.output_shape())
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_physics_loss_works_through_a_resampling_pipeline() -> None:
    from seisinv.physics import simulate

    truth = torch.full((1, 16, 16), 2000.0)
    truth[:, 8:] = 3000.0
    observed = simulate(truth, SURVEY, device="cpu")
    steps = [
        {"name": "crop", "length": 110},
        {"name": "resample", "length": 55},
        {"name": "zscore"},
    ]
    pipeline = fitted(steps, observed[0].numpy())
    inputs = pipeline(observed)
    assert inputs.shape == (1, 2, 55, 15)
    fn = LOSSES.get("physics")(LossContext(SURVEY, pipeline), device="cpu")
    assert float(fn(truth, truth, inputs)[0]) == pytest.approx(0.0, abs=1e-8)
    wrong = truth.clone()
    wrong[:, :8] = 2400.0
    wrong.requires_grad_(True)
    misfit = fn(wrong, truth, inputs)
    misfit.sum().backward()
    assert float(misfit[0].detach()) > 1e-3
    assert wrong.grad is not None and float(wrong.grad.abs().sum()) > 0


def test_physics_loss_on_a_subset_of_shots_compares_those_shots_only() -> None:
    """``shots: [1]`` simulates shot 1 alone and compares it with shot 1 of the input: zero for
    the true map, the same misfit as the full term computes on that shot, and refused with a
    pipeline that merges the shots."""
    from seisinv.errors import ConfigError
    from seisinv.physics import simulate
    from seisinv.physics.misfit import residual_energy_ratio

    truth = torch.full((1, 16, 16), 2000.0)
    truth[:, 8:] = 3000.0
    observed = simulate(truth, SURVEY, device="cpu")
    pipeline = fitted([{"name": "resample", "length": 60}, {"name": "zscore"}], observed[0].numpy())
    inputs = torch.as_tensor(pipeline(observed))
    one = LOSSES.get("physics")(LossContext(SURVEY, pipeline), device="cpu", shots=[1])
    assert float(one(truth, truth, inputs)[0]) == pytest.approx(0.0, abs=1e-8)
    wrong = truth.clone()
    wrong[:, :8] = 2400.0
    simulated = differentiable_pipeline(pipeline)(simulate(wrong, SURVEY, device="cpu"))
    expected = residual_energy_ratio(simulated[:, [1]], inputs[:, [1]])
    assert float(one(wrong, truth, inputs)[0]) == pytest.approx(float(expected[0]), rel=1e-5)
    with pytest.raises(ConfigError, match="distinct indices"):
        LOSSES.get("physics")(LossContext(SURVEY, pipeline), shots=[5])
    merged = fitted([{"name": "shots_side_by_side"}], observed[0].numpy())
    with pytest.raises(ConfigError, match="keeps the shots axis"):
        LOSSES.get("physics")(LossContext(SURVEY, merged), shots=[0])
