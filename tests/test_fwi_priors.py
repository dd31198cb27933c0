"""Tests of FWI's priors, the batched L-BFGS and the per-sample prior choice (issue 15).

Tiny grids, CPU, float64 simulation (``simulate(dtype=float64)``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seisinv.errors import ConfigError
from seisinv.fwi import FwiConfig, invert
from seisinv.fwi.lbfgs import LbfgsSettings, minimize
from seisinv.fwi.precondition import gaussian_smooth
from seisinv.fwi.priors import (
    PRIORS,
    PriorSettings,
    build_prior,
    canonical_family,
    choose_prior,
    gp_basis,
    lateral_variation,
)
from seisinv.survey import OPENFWI

N = 16


@pytest.fixture(scope="module")
def survey():
    """16 x 16 cells at 10 m, 200 samples at 1 ms, 25 Hz; sources and receivers on top
    (reflection, as in OpenFWI)."""
    return OPENFWI.replace(
        name="fwi-prior-tiny", nz=N, nx=N, nt=200, frequency=25.0, wavelet_peak_time=None,
        source_x=(0.0, 75.0, 150.0), receiver_x=tuple(10.0 * i for i in range(N)),
    )


def _layered() -> np.ndarray:
    """(1, N, N) m/s: three flat layers."""
    v = np.full((N, N), 2000.0)
    v[5:] = 2600.0
    v[11:] = 3300.0
    return v[None]


def _faulted() -> np.ndarray:
    """(1, N, N) m/s: the layers of ``_layered`` offset by 3 cells right of x = 8."""
    v = _layered()[0].copy()
    v[:, 8:] = np.roll(v[:, 8:], 3, axis=0)
    v[:3, 8:] = 2000.0
    return v[None]


def _simulate(velocity: np.ndarray, survey) -> torch.Tensor:
    from seisinv.physics import simulate

    return simulate(velocity, survey, device="cpu", dtype=torch.float64)


# ---- gradients ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["none", "tv1d", "tv2d", "gp"])
def test_prior_objective_taylor(survey, name):
    """misfit(simulate(v(theta))) + prior(theta): the second-order Taylor remainder falls like
    h^2, so the gradient through each parametrisation and penalty is right."""
    from seisinv.physics import simulate
    from seisinv.physics.misfit import l2_misfit

    observed = _simulate(_faulted(), survey)
    span = survey.vmax - survey.vmin
    start = (gaussian_smooth(torch.from_numpy(_layered()), 1.5) - survey.vmin) / span
    prior = build_prior(name, start, PriorSettings(weight=1e-2, tv_epsilon=1e-2, gp_modes=60))
    idx = torch.arange(1)

    def objective(theta: torch.Tensor) -> torch.Tensor:
        velocity = survey.vmin + span * prior.model(theta, idx)
        simulated = simulate(velocity, survey, device="cpu", dtype=torch.float64)
        return (l2_misfit(simulated, observed) + prior.penalty(theta)).sum()

    theta0 = prior.theta0.clone().requires_grad_(True)
    j0 = objective(theta0)
    (gradient,) = torch.autograd.grad(j0, theta0)
    generator = torch.Generator().manual_seed(1)
    direction = torch.randn(theta0.shape, generator=generator, dtype=torch.float64)
    direction *= 0.02 / direction.abs().max()
    slope = float((gradient * direction).sum())
    remainders = []
    with torch.no_grad():
        for h in (1.0, 0.5, 0.25, 0.125):
            remainders.append(abs(float(objective(theta0 + h * direction)) - float(j0) - h * slope))
    rates = np.log2(np.array(remainders[:-1]) / np.array(remainders[1:]))
    assert np.all(np.abs(rates - 2.0) < 0.3), (rates, remainders)


def test_tv_penalties_by_hand():
    start = torch.zeros(1, 3, 4, dtype=torch.float64)
    settings = PriorSettings(weight=2.0, tv_epsilon=1e-9)
    steps = torch.tensor([[0.0, 0.3, 0.1]], dtype=torch.float64)
    # tv1d: mean |diff| of the profile = (0.3 + 0.2) / 2, times the weight
    assert float(build_prior("tv1d", start, settings).penalty(steps)) == pytest.approx(0.5, 1e-6)
    grid = torch.zeros(1, 12, dtype=torch.float64)
    grid[0, 5] = 1.0  # cell (1, 1) of a 3 x 4 map: 2 vertical + 2 horizontal jumps of 1, of 17
    value = float(build_prior("tv2d", start, settings).penalty(grid))
    assert value == pytest.approx(2.0 * 4 / 17, 1e-6)
    assert float(build_prior("none", start, settings).penalty(grid)) == 0.0
    assert sorted(PRIORS.names()) == ["gp", "none", "tv1d", "tv2d"]
    with pytest.raises(ConfigError, match="prior 'tv3d'"):
        build_prior("tv3d", start, settings)


def test_gp_basis_is_the_covariance_eigenbasis():
    """With every mode kept, B B^T is the squared-exponential covariance plus the offset and
    slope terms (the Kronecker eigendecomposition is exact); truncation keeps the largest."""
    nz, nx, length, sigma = 5, 6, 1.7, 0.3
    basis = gp_basis((nz, nx), nz * nx, length, sigma, 0.2, 0.05)
    z, x = np.meshgrid(np.arange(nz), np.arange(nx), indexing="ij")
    z, x = z.ravel(), x.ravel()
    r2 = (z[:, None] - z[None]) ** 2 + (x[:, None] - x[None]) ** 2
    zc = z - (nz - 1) / 2
    cov = sigma**2 * np.exp(-r2 / (2 * length**2)) + 0.2**2 + 0.05**2 * np.outer(zc, zc)
    np.testing.assert_allclose((basis @ basis.T).numpy(), cov, atol=1e-10)
    few = gp_basis((nz, nx), 4, length, sigma, 0.2, 0.05)
    energy = few[:, :4].pow(2).sum(0)
    assert torch.all(energy[:-1] >= energy[1:] - 1e-12)
    assert float(energy[0]) == pytest.approx(float(basis[:, :-2].pow(2).sum(0).max()))


# ---- the choice per sample ---------------------------------------------------------------
def test_auto_picks_tv1d_for_flat_maps_and_not_for_faulted_ones():
    from seisinv.geology.sampling import velocity_sample

    for seed in range(3):
        flat = velocity_sample("flat", OPENFWI, seed)
        fault = velocity_sample("flatfault", OPENFWI, seed)
        blurred = gaussian_smooth(torch.from_numpy(flat)[None].double(), 3.0)[0]
        assert choose_prior(flat)[0] == "tv1d"
        assert choose_prior(blurred)[0] == "tv1d"
        assert choose_prior(fault)[0] != "tv1d", lateral_variation(fault)
    assert choose_prior(_faulted()[0])[0] == "tv2d"
    # a known family decides; OpenFWI names map onto seisinv's
    assert choose_prior(_faulted()[0], "FlatVel_A") == ("tv1d", "family flat")
    assert choose_prior(_layered()[0], "Style_B")[0] == "gp"
    assert canonical_family("CurveFault_A") == "curvefault"
    assert canonical_family("unknown") is None
    # a generic start (smooth, gradient) says nothing about the family
    assert choose_prior(_layered()[0], informative_start=False)[0] == "tv2d"


# ---- the optimiser -------------------------------------------------------------------------
def test_batched_lbfgs_samples_are_independent():
    """Rosenbrock of different dimensions and starts: each sample reaches the minimum, and a
    sample's path is the same alone or in a batch (lock-step, no shared line search)."""

    def rosenbrock(x: torch.Tensor, idx: torch.Tensor):
        x = x.detach().requires_grad_(True)
        f = (100 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1 - x[:, :-1]) ** 2).sum(1)
        (g,) = torch.autograd.grad(f.sum(), x)
        return f.detach(), g, f.detach()[:, None]

    x0 = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0], [2.0, -1.0, 1.0, 3.0],
                       [-1.2, 1.0, 1.0, 1.0]], dtype=torch.float64)
    settings = LbfgsSettings(max_iter=200, tol_grad=1e-10, tol_change=0.0)
    together = minimize(rosenbrock, x0, settings)
    np.testing.assert_allclose(together.x[:3].numpy(), 1.0, atol=1e-5)
    # the 4-D Rosenbrock function's other stationary point, a local minimum near
    # (-0.7757, 0.6131, 0.3820, 0.1459) (Kok & Sandrock 2009)
    np.testing.assert_allclose(together.x[3].numpy(), [-0.7757, 0.6131, 0.3820, 0.1459],
                               atol=2e-4)
    assert together.stop == ["tol_grad"] * 4
    for b in range(4):
        alone = minimize(rosenbrock, x0[b:b + 1], settings)
        assert alone.iterations[0] == together.iterations[b]
        torch.testing.assert_close(alone.x[0], together.x[b], rtol=0, atol=1e-12)
        # strong Wolfe: the objective never increases
        assert np.all(np.diff(together.objective[b]) <= 0)


def test_batched_and_one_by_one_inversion_agree(survey):
    truth = np.concatenate([_layered(), _faulted()])
    observed = _simulate(truth, survey)
    start = gaussian_smooth(torch.from_numpy(truth), 1.5).numpy()
    config = FwiConfig(iters=3, prior="tv2d", prior_strength=1e-4, device="cpu")
    together = invert(observed, start, survey, config)
    for b in range(2):
        alone = invert(observed[b:b + 1], start[b:b + 1], survey, config)
        np.testing.assert_allclose(alone.velocity[0], together.velocity[b], rtol=0, atol=1e-3)
        np.testing.assert_allclose(alone.misfit[0], together.misfit[b], rtol=1e-9)


def test_tv1d_recovers_a_layered_model_from_a_blurred_start(survey):
    """Flat layers, start blurred by 2 cells (MAE 118 m/s): two L-BFGS iterations and the 1-D
    TV prior's Gauss-Newton steps land on the layers, MAE < 0.5 m/s (noise-free data of the
    same simulator). L-BFGS alone needs far more iterations (the deepest layer is seen only
    through its reflection amplitude): 60 of them leave ~6 m/s."""
    truth = _layered()
    observed = _simulate(truth, survey)
    start = gaussian_smooth(torch.from_numpy(truth), 2.0).numpy()
    config = FwiConfig(iters=2, prior="tv1d", prior_strength=1e-6, gauss_newton=6,
                       boundary_width=None, device="cpu")  # the simulator of the data
    result = invert(observed, start, survey, config, true_velocity=truth)
    before = float(np.abs(start - truth).mean())
    after = float(np.abs(result.velocity - truth).mean())
    assert before > 100.0
    assert after < 0.5, (before, after, result.stop)
    assert np.abs(result.velocity - truth).max() < 3.0
    assert result.prior == ["tv1d"] and result.prior_reason == ["set by prior"]
    assert result.stop[0][-1].startswith("gauss_newton")
    assert np.all(np.ptp(result.velocity[0], axis=1) == 0)  # every row constant
    assert np.all(np.diff(result.misfit[0][2:]) <= 0)  # Gauss-Newton steps never go uphill


def test_cli_options_come_from_the_config():
    """Every FwiConfig field is a ``seisinv fwi`` option, with the field's default and help."""
    from typer.testing import CliRunner

    from seisinv.cli.fwi import config_parameters
    from seisinv.cli.main import app
    from seisinv.fwi.config import FwiConfig, cli_flag

    params, _, flags = config_parameters()
    assert [p.name for p in params] == list(FwiConfig.model_fields)
    assert flags["smooth_sigma"] == "--smooth-grad" and cli_flag("prior") == "--prior"
    help_text = CliRunner().invoke(app, ["fwi", "--help"], env={"COLUMNS": "300"}).output
    for name in FwiConfig.model_fields:
        assert flags[name] in help_text, name
    bad = CliRunner().invoke(app, ["fwi", "--data", "x", "--survey", "openfwi", "--init",
                                   "smooth", "--out", "o", "--iters", "0"])
    assert bad.exit_code != 0
    assert "--iters" in str(bad.exception) or "--iters" in bad.output


def test_one_gather_misfit_for_fwi_and_qc():
    """physics.misfit by hand; FWI's l2 is half the residual energy ratio, qc's relative misfit
    its square root (the same function, not a copy)."""
    from seisinv.evaluation.qc import relative_misfit
    from seisinv.fwi.misfit import l2_misfit as fwi_l2
    from seisinv.physics.misfit import l2_misfit, relative_l2, residual_energy_ratio

    observed = torch.zeros(2, 2, 3, 1, dtype=torch.float64)
    observed[:, 0, :, 0] = torch.tensor([1.0, 2.0, 2.0])  # energy 9 in shot 0
    observed[:, 1, :, 0] = torch.tensor([0.0, 4.0, 3.0])  # energy 25 in shot 1
    simulated = observed.clone()
    simulated[0, 0, 0, 0] += 3.0  # residual energy 9, all in shot 0
    ratio = residual_energy_ratio(simulated, observed)
    torch.testing.assert_close(ratio, torch.tensor([9 / 34, 0.0], dtype=torch.float64))
    torch.testing.assert_close(residual_energy_ratio(simulated, observed, per_shot=True)[0],
                               torch.tensor([1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(l2_misfit(simulated, observed), 0.5 * ratio)
    assert fwi_l2 is l2_misfit
    per_sample, per_shot = relative_misfit(simulated.numpy(), observed.numpy())
    np.testing.assert_allclose(per_sample, relative_l2(simulated, observed).numpy())
    np.testing.assert_allclose(per_shot, [[1.0, 0.0], [0.0, 0.0]])


# ---- the family from a classifier ----------------------------------------------------------
def test_classifier_names_each_samples_family_for_prior_auto(tmp_path, tiny_survey):
    """``FwiConfig.classifier`` (``seisinv fwi --classifier RUN``): a tiny ``task: family`` run
    names each sample's family from its start; the prior follows that family and fwi/<id>.json
    records family, source and reason."""
    from test_training import tiny_config, write_dataset

    from seisinv.fwi import read_histories, run_fwi
    from seisinv.fwi.job import initial_model
    from seisinv.fwi.priors import FAMILY_PRIORS
    from seisinv.models.family_classifier import classify
    from seisinv.training.run import load_run
    from seisinv.training.trainer import train

    data = write_dataset(tmp_path / "data", tiny_survey, n=2)
    train(tiny_config(data, f"data.train=[{data['FlatVel_A']}, {data['CurveVel_A']}]",
                      "data.val=[]", "folds.k=2", "folds.val_fold=0", "task=family",
                      "model.name=family_classifier", 'model.options={"width": 2, "depth": 1}',
                      "batch_size=2", "steps=2", "ema.enabled=false", "checkpoint={}"),
          tmp_path / "run")
    model = load_run(tmp_path / "run", device="cpu").model
    config = FwiConfig(iters=1, classifier=str(tmp_path / "run"), device="cpu")
    run_fwi(data["CurveVel_A"], tiny_survey, "smooth", tmp_path / "fwi", config, limit=2,
            progress=False)
    histories = read_histories(tmp_path / "fwi")
    assert len(histories) == 2
    start = initial_model("smooth", tiny_survey, histories[0]["id"], 0.0)
    expected = classify(model, start)[0]
    for record in histories:
        assert record["family"] == expected and record["family_source"] == "classifier"
        assert record["prior"] == FAMILY_PRIORS[canonical_family(expected)]
        assert f"from the classifier {expected}" in record["prior_reason"]
    with pytest.raises(ConfigError, match="classifier needs optimizer lbfgs"):
        from seisinv.fwi import fwi_config

        fwi_config({"optimizer": "adam", "classifier": "run"})


def test_gp_unknowns_are_unit_norm_column_coefficients():
    """The gp prior optimises the coefficients of unit-norm columns: its model is still ``B c``
    and its penalty ``weight mean(c^2)`` with ``c`` the whitened coefficients, and the start
    round-trips through the basis."""
    nz, nx = 8, 9
    settings = PriorSettings(weight=0.5, gp_modes=40, gp_length=2.0)
    start = 0.4 + 0.1 * torch.rand(2, nz, nx, dtype=torch.float64,
                                   generator=torch.Generator().manual_seed(0))
    start = gaussian_smooth(start, 2.0)
    prior = build_prior("gp", start, settings)
    basis = gp_basis((nz, nx), 40, 2.0, settings.gp_sigma, settings.gp_offset_sigma,
                     settings.gp_slope_sigma)
    c = prior.theta0 / basis.norm(dim=0)
    idx = torch.arange(2)
    torch.testing.assert_close(prior.model(prior.theta0, idx), (c @ basis.T).reshape(2, nz, nx))
    torch.testing.assert_close(prior.penalty(prior.theta0), 0.5 * c.pow(2).mean(-1))
    assert float((prior.model(prior.theta0, idx) - start).abs().max()) < 2e-3


def _openfwi_layers(survey, sponge: int):
    """``_layered`` observed through OpenFWI's own scheme with a ``sponge``-cell border:
    (survey matched to that scheme, truth, observed float64, start blurred by 2 cells)."""
    from seisinv.physics import openfwi_reference
    from seisinv.physics.wavelet import openfwi_wavelet_length

    # OpenFWI's Ricker peaks on its middle sample and is injected one step late; its sources
    # sit on cells (simulate would place the fixture's 75 m source between two).
    peak = (openfwi_wavelet_length(survey.frequency, survey.dt) // 2 - 1) * survey.dt
    matched = survey.replace(wavelet_peak_time=peak, source_x=(0.0, 70.0, 150.0))
    truth = _layered()
    observed = openfwi_reference(truth, matched, nbc=sponge).double()
    return matched, truth, observed, gaussian_smooth(torch.from_numpy(truth), 2.0).numpy()


def test_tv1d_recovers_layers_from_openfwi_reference_data(survey):
    """Observed data from OpenFWI's own scheme (``openfwi_reference``: replicated, damped
    sponge, periodic stencil), inverted with deepwave's PML: the modelling error is small
    enough that ``tv1d`` with Gauss-Newton lands within a few m/s of three flat layers from a
    blurred start (MAE 118 m/s; measured 2.3, the deepest rows worst: on 16 rows and 200 ms
    the last layer is seen only by its reflection amplitude). The weight is 1e-5: the penalty
    is a mean over rows, so the default 1e-4 (tuned on 70 rows) is ~4x stronger here."""
    matched, truth, observed, start = _openfwi_layers(survey, sponge=60)
    config = FwiConfig(iters=2, prior="tv1d", prior_strength=1e-5, gauss_newton=6, device="cpu")
    result = invert(observed, start, matched, config, true_velocity=truth)
    before = float(np.abs(start - truth).mean())
    after = float(np.abs(result.velocity - truth).mean())
    assert before > 100.0
    assert after < 4.0, (before, after, result.stop)
    assert np.abs(result.velocity - truth)[0, :11].max() < 4.0  # the two upper layers


def test_classifier_run_retrained_in_the_same_process_is_reloaded(tmp_path, monkeypatch):
    """The FWI family classifier is cached per checkpoint version, never served stale."""
    import os
    import types

    import seisinv.training as training
    from seisinv.fwi import family

    (tmp_path / "manifest.json").write_text("{}")
    loads = []

    def fake_load_run(run, device):
        loads.append(run)
        return types.SimpleNamespace(model=types.SimpleNamespace(families=["FlatVel_A"]))

    monkeypatch.setattr(training, "load_run", fake_load_run)
    family._load_classifier_version.cache_clear()
    first = family._load_classifier(str(tmp_path), "cpu")
    assert family._load_classifier(str(tmp_path), "cpu") is first and len(loads) == 1
    stamp = (tmp_path / "manifest.json").stat().st_mtime_ns + 10**9
    os.utime(tmp_path / "manifest.json", ns=(stamp, stamp))  # a new checkpoint was written
    assert family._load_classifier(str(tmp_path), "cpu") is not first and len(loads) == 2
    family._load_classifier_version.cache_clear()


def test_tv1d_with_openfwi_physics_recovers_layers_exactly_from_openfwi_data(survey):
    """The same problem as above inverted with OpenFWI's own scheme (``physics: openfwi``, what
    the Kaggle 2nd place did with their kernels): no modelling error is left, so the layers come
    back to a fraction of a m/s where deepwave's PML stops at a few m/s."""
    matched, truth, observed, start = _openfwi_layers(survey, sponge=30)
    common = dict(iters=2, prior="tv1d", prior_strength=1e-5, gauss_newton=6, device="cpu")
    exact = invert(observed, start, matched,
                   FwiConfig(**common, physics="openfwi", sponge_width=30), true_velocity=truth)
    pml = invert(observed, start, matched, FwiConfig(**common), true_velocity=truth)
    after = float(np.abs(exact.velocity - truth).mean())
    assert after < 0.5, (after, exact.stop)  # measured 0.23 m/s
    # deepwave (PML) against this narrow 30-cell sponge's data: 38 m/s
    assert after < 0.5 * float(np.abs(pml.velocity - truth).mean())
    assert float(exact.misfit_end[0]) < 1e-3 * float(exact.misfit_start[0])


def test_openfwi_physics_needs_square_cells(survey):
    from seisinv.errors import ConfigError

    tall = survey.replace(dz=5.0)
    with pytest.raises(ConfigError, match="physics 'openfwi': OpenFWI's scheme needs square"):
        invert(np.zeros((1, *tall.gather_shape)), np.full((1, N, N), 2500.0), tall,
               FwiConfig(physics="openfwi", device="cpu"))
