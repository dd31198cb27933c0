"""Tests of seisinv.fwi: gradient (Taylor), recovery of an anomaly, bounds, misfits, filters,
wavelet estimation, starting models, resumable jobs and the CLI. Tiny grids, CPU, float32."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seisinv.errors import ConfigError, DataError
from seisinv.fwi import (
    BoundedModel,
    FwiConfig,
    gradient_model,
    invert,
    l2_misfit,
    normalized_misfit,
    run_fwi,
    smooth_model,
)
from seisinv.fwi.precondition import gaussian_smooth, precondition_gradient, total_variation
from seisinv.fwi.signal import apply_filter, lowpass, wiener_filter
from seisinv.survey import OPENFWI

N = 24  # grid cells per side
BACKGROUND = 2500.0  # m/s
ANOMALY = 300.0  # m/s, peak of the Gaussian anomaly


@pytest.fixture(scope="module")
def survey():
    """24 x 24 cells at 10 m, 250 samples at 1 ms, 25 Hz; sources on top, receivers at the bottom
    (transmission: the waves cross the anomaly, which makes it recoverable on a tiny grid)."""
    return OPENFWI.replace(
        name="fwi-tiny",
        nz=N,
        nx=N,
        nt=250,
        frequency=25.0,
        wavelet_peak_time=None,
        source_x=(0.0, 80.0, 150.0, 230.0),
        receiver_x=tuple(20.0 * i for i in range(12)),
        receiver_z=220.0,
    )


@pytest.fixture(scope="module")
def true_model() -> np.ndarray:
    """(1, N, N) m/s: homogeneous background with a Gaussian high-velocity anomaly in the middle."""
    z, x = np.mgrid[0:N, 0:N]
    bump = ANOMALY * np.exp(-((z - N / 2) ** 2 + (x - N / 2) ** 2) / (2 * 3.0**2))
    return (BACKGROUND + bump)[None].astype(np.float32)


@pytest.fixture(scope="module")
def observed(survey, true_model) -> torch.Tensor:
    from seisinv.physics import simulate

    return simulate(true_model, survey, device="cpu")


def _background() -> np.ndarray:
    return np.full((1, N, N), BACKGROUND, np.float32)


# ---- gradient ------------------------------------------------------------------------------
@pytest.mark.parametrize("misfit", [l2_misfit, normalized_misfit])
def test_taylor_remainders(survey, observed, misfit):
    """|J(p + h dp) - J(p)| falls like h and |J(p + h dp) - J(p) - h g.dp| like h^2."""
    from seisinv.physics import simulate

    model = BoundedModel(torch.from_numpy(_background()), survey.vmin, survey.vmax)

    def objective() -> torch.Tensor:
        simulated = lowpass(simulate(model(), survey, device="cpu"), survey.dt, 40.0)
        return misfit(simulated, observed).sum()

    j0 = objective()
    j0.backward()
    gradient = model.p.grad.clone()
    torch.manual_seed(0)
    direction = gaussian_smooth(torch.randn(1, N, N), 2.0)
    direction /= direction.abs().max()
    p0 = model.p.detach().clone()
    slope = float((gradient * direction).sum())
    first, second = [], []
    # float32 forward modelling: steps from 0.2 down to 0.0125 in logit units keep the second-
    # order remainder (>1e-5) well above the rounding noise of the misfit (~1e-8).
    steps = [0.2, 0.1, 0.05, 0.025, 0.0125]
    with torch.no_grad():
        for h in steps:
            model.p.copy_(p0 + h * direction)
            jh = float(objective())
            first.append(abs(jh - float(j0)))
            second.append(abs(jh - float(j0) - h * slope))
    first_rates = np.log2(np.array(first[:-1]) / np.array(first[1:]))
    second_rates = np.log2(np.array(second[:-1]) / np.array(second[1:]))
    assert np.all(np.abs(first_rates[1:] - 1.0) < 0.25), first_rates
    assert np.all(np.abs(second_rates - 2.0) < 0.25), second_rates


# ---- inversion -----------------------------------------------------------------------------
def test_lbfgs_recovers_anomaly_and_misfit_decreases(survey, observed, true_model):
    start = _background()
    result = invert(observed, start, survey, FwiConfig(iters=12, optimizer="lbfgs", prior="none"),
                    true_velocity=true_model)
    box = (slice(None), slice(N // 2 - 5, N // 2 + 6), slice(N // 2 - 5, N // 2 + 6))
    rms_before = np.sqrt(np.mean((start - true_model)[box] ** 2))
    rms_after = np.sqrt(np.mean((result.velocity - true_model)[box] ** 2))
    # Surface sources and one receiver line leave a vertical null space (smearing along the ray
    # paths), so ~2.8x is what this geometry allows; most of the anomaly's mean is recovered.
    assert rms_after < rms_before / 2.5
    mean_anomaly = float((true_model - BACKGROUND)[box].mean())
    recovered = float((result.velocity - BACKGROUND)[box].mean())
    assert 0.6 * mean_anomaly < recovered < 1.2 * mean_anomaly
    # L-BFGS with a Wolfe line search never increases the misfit.
    assert np.all(np.diff(result.misfit[0]) <= 1e-9 * result.misfit[0, 0])
    assert result.misfit_end[0] < 1e-3 * result.misfit_start[0]
    assert result.model_mae.shape == (1, 13)


def test_adam_multiscale_respects_bounds(survey, observed, true_model):
    """Bounds narrower than the truth: the inversion pushes against vmax but never crosses it."""
    narrow = survey.replace(vmin=2400.0, vmax=2650.0)
    config = FwiConfig(iters=8, optimizer="adam", lr=0.3, bands=(15.0, 0.0), shots_per_iter=2,
                       mask_rows=None,
                       regularization="tv", reg_weight=0.01, misfit="normalized")
    result = invert(observed, _background(), narrow, config)
    assert result.velocity.min() >= narrow.vmin
    assert result.velocity.max() <= narrow.vmax
    assert result.velocity.max() > BACKGROUND + 80.0  # it did reach for the anomaly
    assert result.band_hz.tolist() == [15.0] * 4 + [0.0] * 4
    assert result.misfit[0, 3] < result.misfit[0, 0]
    # mask_rows=None masks down to the source row (row 1): those rows keep their start.
    np.testing.assert_allclose(result.velocity[0, :2], BACKGROUND, atol=1.0)


def test_prior_weight_holds_the_model_near_its_start(survey, observed):
    """The prior term pulls toward the start: the stronger it is, the less the model moves and
    the less of the data it explains; a moderate weight still lets the data act."""
    moved, fit = {}, {}
    for weight in (0.0, 300.0, 30000.0):
        result = invert(observed, _background(), survey,
                        FwiConfig(iters=10, optimizer="adam", lr=0.1, prior_weight=weight))
        moved[weight] = float(np.abs(result.velocity - BACKGROUND).mean())
        fit[weight] = float(result.misfit_end[0] / result.misfit_start[0])
    assert moved[0.0] > moved[300.0] > moved[30000.0]
    assert moved[30000.0] < 0.35 * moved[0.0]
    assert moved[300.0] > 0.6 * moved[0.0]
    assert fit[0.0] < fit[30000.0]


def test_wavelet_estimation_absorbs_a_wrong_wavelet(survey, true_model):
    """Data made with a shifted, scaled, lower-frequency wavelet; the matching filter maps the
    survey-wavelet simulation onto it almost exactly (the data are linear in the wavelet)."""
    from seisinv.physics import ricker, simulate

    other = 2.5 * ricker(18.0, survey.dt, survey.nt, peak_time=0.07)
    observed = simulate(true_model, survey, device="cpu", wavelet=other)
    simulated = simulate(true_model, survey, device="cpu")
    matched = apply_filter(simulated, wiener_filter(observed, simulated, damping=1e-6))
    before = float(l2_misfit(simulated, observed)[0])
    after = float(l2_misfit(matched, observed)[0])
    assert before > 0.3
    assert after < 1e-3 * before


def test_bad_inputs_raise(survey, observed):
    with pytest.raises(DataError, match="initial velocity"):
        invert(observed, np.full((1, N, N + 1), BACKGROUND), survey, FwiConfig(iters=1))
    with pytest.raises(DataError, match="observed gathers"):
        invert(observed[:, :2], _background(), survey, FwiConfig(iters=1))
    from seisinv.fwi import fwi_config

    with pytest.raises(ConfigError, match="shots_per_iter"):
        fwi_config({"iters": 1, "optimizer": "lbfgs", "shots_per_iter": 2})
    with pytest.raises(ConfigError, match="needs optimizer lbfgs"):
        fwi_config({"optimizer": "adam", "prior": "tv2d"})
    with pytest.raises(ConfigError, match="bands"):
        fwi_config({"bands": [-1.0]})


# ---- pure pieces ---------------------------------------------------------------------------
def test_misfits_hand_values():
    observed = torch.zeros(1, 1, 4, 2)
    observed[0, 0, :, 0] = torch.tensor([1.0, 2.0, 0.0, -1.0])
    observed[0, 0, :, 1] = torch.tensor([0.0, 1.0, 1.0, 0.0])
    simulated = observed.clone()
    simulated[0, 0, 0, 0] = 0.0
    # 0.5 * 1^2 / (1 + 4 + 1 + 1 + 1) = 1/16
    assert float(l2_misfit(simulated, observed)) == pytest.approx(1 / 16)
    # Scaling each trace by its own positive factor leaves the normalised misfit at 0.
    scaled = observed * torch.tensor([3.0, 0.2])
    assert float(normalized_misfit(scaled, observed)) == pytest.approx(0.0, abs=1e-6)
    assert float(normalized_misfit(-observed, observed)) == pytest.approx(2.0, abs=1e-6)


def test_lowpass_response():
    dt, nt = 0.001, 2000
    t = torch.arange(nt, dtype=torch.float64) * dt
    window = torch.hann_window(nt, periodic=False, dtype=torch.float64)

    def gain(freq: float) -> float:
        tone = torch.sin(2 * torch.pi * freq * t) * window
        return float(lowpass(tone[:, None], dt, 20.0).norm() / tone.norm())

    assert gain(5.0) == pytest.approx(1.0, abs=1e-3)
    assert gain(20.0) == pytest.approx(0.5, abs=0.02)  # two-way Butterworth: -6 dB at the corner
    assert gain(60.0) < 1e-4
    tone = torch.randn(3, 100, 4)
    assert torch.equal(lowpass(tone, dt, 0.0), tone)


def test_preconditioning_and_regularisers():
    grad = torch.zeros(1, 20, 20)
    grad[0, 10, 10] = 1.0
    smoothed = gaussian_smooth(grad, 1.5)
    assert float(smoothed.sum()) == pytest.approx(1.0, abs=1e-5)  # mass kept away from edges
    conditioned = precondition_gradient(torch.ones(1, 10, 8), 0.0, 1.0, 3)
    assert torch.all(conditioned[0, :3] == 0)
    assert torch.all(conditioned[0, 9] == 1.0) and conditioned[0, 4, 0] == pytest.approx(0.5)
    flat = torch.ones(2, 6, 6)
    assert torch.all(total_variation(flat) < 1e-2)
    step = flat.clone()
    step[:, 3:] = 2.0
    assert torch.all(total_variation(step) > total_variation(flat))


def test_bounded_model_round_trip_and_coarse_grid():
    start = torch.linspace(1600.0, 4400.0, 9 * 13).reshape(1, 9, 13)
    model = BoundedModel(start, 1500.0, 4500.0)
    torch.testing.assert_close(model(), start, rtol=1e-4, atol=0.1)
    ramp = torch.linspace(1600.0, 4400.0, 33)[:, None] + torch.linspace(0.0, 40.0, 41)
    coarse = BoundedModel(ramp[None], 1500.0, 4500.0, coarsen=4)
    assert coarse.p.shape == (1, 9, 11)
    assert coarse().shape == (1, 33, 41)
    # Nodes every 4 cells, bilinear in between: a linear field survives up to the edge effect of
    # the anti-alias smoothing.
    assert float((coarse().detach() - ramp).abs().mean()) < 0.02 * 3000.0


def test_starting_models(survey):
    ramp = gradient_model(survey)
    assert ramp.shape == survey.velocity_shape and ramp.dtype == np.float32
    assert np.all(np.diff(ramp[:, 0]) > 0) and np.all(ramp == ramp[:, :1])
    assert ramp.min() >= survey.vmin and ramp.max() <= survey.vmax
    blocky = np.full(survey.velocity_shape, 2000.0, np.float32)
    blocky[12:] = 4000.0
    smooth = smooth_model(survey, blocky)
    assert np.abs(np.diff(smooth, axis=0)).max() < 0.5 * 2000.0
    assert smooth.min() >= 2000.0 - 1 and smooth.max() <= 4000.0 + 1


# ---- jobs ----------------------------------------------------------------------------------
def _dataset(tmp_path, survey, true_model, n=3):
    from seisinv.data.writers import write_sample_folder
    from seisinv.physics import simulate

    velocities = np.concatenate([true_model + 20.0 * k for k in range(n)])
    gathers = simulate(velocities, survey, device="cpu").numpy()
    for k in range(n):
        write_sample_folder(tmp_path / "data", f"s{k}", gathers[k], velocities[k], survey,
                            velocity_dtype=np.float32)
    return tmp_path / "data"


def test_job_resumes_after_interruption(tmp_path, survey, true_model):
    from seisinv.inference.store import PredictionStore

    folder_survey = survey.replace(layout="speed-structure", shot_names=("a", "b", "c", "d"))
    data = _dataset(tmp_path, folder_survey, true_model)
    config = FwiConfig(iters=2, batch_size=1)
    out = tmp_path / "out"

    class Interrupted(Exception):
        pass

    def stop_after_first(sample_id: str) -> None:
        raise Interrupted(sample_id)

    with pytest.raises(Interrupted):
        run_fwi(data, folder_survey, "gradient", out, config, progress=False,
                on_sample=stop_after_first)
    store = PredictionStore(out)
    assert store.ids() == ["s0"]
    first = store.read("s0").copy()
    mtime = (out / "velocity" / "s0.npy").stat().st_mtime_ns
    summary = run_fwi(data, folder_survey, "gradient", out, config, progress=False)
    assert summary.skipped == ["s0"] and summary.inverted == ["s1", "s2"]
    assert (out / "velocity" / "s0.npy").stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(store.read("s0"), first)
    history = json.loads((out / "fwi" / "s1.json").read_text())
    assert len(history["misfit"]) == 2 and len(history["model_mae"]) == 3
    assert (out / "fwi" / "s1.csv").read_text().startswith("iteration,band_hz,misfit,model_mae")
    assert (out / "convergence.png").stat().st_size > 1000


def test_cli_fwi_from_prediction_store(tmp_path, survey, true_model):
    from typer.testing import CliRunner

    from seisinv.cli.main import app
    from seisinv.inference.store import PredictionStore
    from seisinv.io import write_yaml

    folder_survey = survey.replace(layout="speed-structure", shot_names=("a", "b", "c", "d"))
    data = _dataset(tmp_path, folder_survey, true_model, n=2)
    survey_file = tmp_path / "survey.yaml"
    write_yaml(survey_file, folder_survey.to_dict())
    start = PredictionStore(tmp_path / "pred", folder_survey)
    for k in range(2):
        start.write(f"s{k}", _background()[0])
    result = CliRunner().invoke(app, [
        "fwi", "--data", str(data), "--survey", str(survey_file), "--init",
        str(tmp_path / "pred"), "--iters", "3", "--out", str(tmp_path / "out"),
        "--bands", "15,0", "--prior", "tv2d", "--prior-strength", "1e-6", "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    refined = PredictionStore(tmp_path / "out")
    assert refined.ids() == ["s0", "s1"]
    box = (slice(N // 2 - 5, N // 2 + 6), slice(N // 2 - 5, N // 2 + 6))
    for k in range(2):
        truth = true_model[0] + 20.0 * k
        before = np.abs(_background()[0] - truth)[box].mean()
        after = np.abs(refined.read(f"s{k}") - truth)[box].mean()
        assert after < before
        history = json.loads((tmp_path / "out" / "fwi" / f"s{k}.json").read_text())
        assert history["misfit_end"] < history["misfit_start"]
        assert history["band_hz"] == [15.0, 15.0, 0.0]
    bad = CliRunner().invoke(app, ["fwi", "--data", str(data), "--survey", str(survey_file),
                                   "--init", "nowhere", "--out", str(tmp_path / "o2")])
    assert bad.exit_code != 0
    # OpenFWI's own scheme as the forward model, from the CLI; recorded with the settings.
    exact = CliRunner().invoke(app, [
        "fwi", "--data", str(data), "--survey", str(survey_file), "--init",
        str(tmp_path / "pred"), "--iters", "2", "--out", str(tmp_path / "o3"), "--prior", "tv2d",
        "--physics", "openfwi", "--sponge-width", "10", "--no-progress",
    ])
    assert exact.exit_code == 0, exact.output
    settings = json.loads((tmp_path / "o3" / "fwi_config.json").read_text())
    assert "openfwi" in json.dumps(settings) and '"sponge_width": 10' in json.dumps(settings)
    for k in range(2):
        history = json.loads((tmp_path / "o3" / "fwi" / f"s{k}.json").read_text())
        assert history["misfit_end"] < history["misfit_start"]


def test_initial_model_choices(tmp_path, survey):
    from seisinv.fwi.job import initial_model
    from seisinv.inference.store import PredictionStore

    ramp = initial_model("gradient", survey, "any")
    smooth = initial_model("smooth", survey, "any")
    # One wavelength (12 cells here) of smoothing with replicated edges flattens the ramp's ends.
    assert np.all(np.diff(smooth[:, 5]) >= 0) and np.all(smooth == smooth[:, :1])
    assert ramp.min() < smooth.min() < smooth.max() < ramp.max()
    store = PredictionStore(tmp_path / "pred", survey)
    blocky = np.full(survey.velocity_shape, 2000.0, np.float32)
    blocky[:, 12:] = 4000.0
    store.write("a", blocky)
    np.testing.assert_array_equal(initial_model(str(tmp_path / "pred"), survey, "a"), blocky)
    smoothed = initial_model(str(tmp_path / "pred"), survey, "a", smooth_sigma_m=50.0)
    assert 2000.0 < smoothed[0, 11] < smoothed[0, 12] < 4000.0
    with pytest.raises(DataError, match="no prediction for sample 'b'"):
        initial_model(str(tmp_path / "pred"), survey, "b")
    with pytest.raises(ConfigError, match="^init "):
        initial_model(str(tmp_path / "nowhere"), survey, "a")
