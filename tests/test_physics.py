"""Tests for seisinv.physics: physics against physics on tiny grids (CPU, one thread)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seisinv.errors import ConfigError, DataError, SeisinvError
from seisinv.physics import ricker, simulate, survey_wavelet
from seisinv.physics.openfwi_reference import openfwi_reference
from seisinv.survey import OPENFWI, Simulation


def _relative_l2(reference, other) -> float:
    reference, other = np.asarray(reference), np.asarray(other)
    return float(np.linalg.norm(reference - other) / np.linalg.norm(reference))


def _point_survey(source_x, receiver_x, nz=40, nx=60, nt=400, depth=100.0):
    """A small OpenFWI-like survey (10 m, 1 ms) with sources and receivers at one depth."""
    return OPENFWI.replace(
        name="point",
        nz=nz,
        nx=nx,
        nt=nt,
        source_x=tuple(source_x),
        receiver_x=tuple(receiver_x),
        source_z=depth,
        receiver_z=depth,
    )


def _analytic_2d(survey, velocity: float, offset: float) -> np.ndarray:
    """Exact 2-D response to ``p_tt = v^2 (lap p + dx dz s(t) delta(x))``: (nt,).

    ``p = dx dz s * g`` with ``g(t) = H(t - r/v) / (2 pi sqrt(t^2 - r^2/v^2))``, integrated
    analytically over each sample (``acosh``) to handle the singularity at ``t = r/v``.
    """
    a = offset / velocity
    edges = (np.arange(survey.nt + 1) - 0.5) * survey.dt
    primitive = np.where(edges > a, np.arccosh(np.maximum(edges, a) / a), 0.0) / (2 * np.pi)
    wavelet = survey_wavelet(survey).numpy().astype(np.float64)
    return survey.dx * survey.dz * np.convolve(wavelet, np.diff(primitive))[: survey.nt]


def test_ricker_peaks_at_peak_time():
    w = ricker(15.0, 0.001, 200, peak_time=0.05)
    assert int(w.argmax()) == 50 and float(w.max()) == pytest.approx(1.0)
    assert w.shape == (200,) and w.dtype == torch.float32


def test_shape_dtype_and_gradient(tiny_survey):
    v = torch.full((2, *tiny_survey.velocity_shape), 2500.0)
    v[:, 16:] = 3000.0
    v.requires_grad_(True)
    gathers = simulate(v, tiny_survey, device="cpu")
    assert gathers.shape == (2, *tiny_survey.gather_shape)
    assert gathers.dtype == torch.float32
    gathers.pow(2).sum().backward()
    assert torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0


def test_gradient_matches_finite_difference(tiny_survey):
    """Directional derivative of a misfit from autograd agrees with a central difference."""
    survey = tiny_survey.replace(nt=200)
    v0 = torch.full((1, *survey.velocity_shape), 2500.0, dtype=torch.float32)
    observed = simulate(v0 + 100.0 * (torch.arange(survey.nz) > 12).view(1, -1, 1), survey)
    direction = torch.zeros_like(v0)
    direction[:, 10:20, 8:24] = 1.0

    def misfit(v):
        return (simulate(v, survey, device="cpu") - observed).pow(2).sum()

    v = v0.clone().requires_grad_(True)
    misfit(v).backward()
    analytic = float((v.grad * direction).sum())
    h = 5.0
    numeric = float((misfit(v0 + h * direction) - misfit(v0 - h * direction)) / (2 * h))
    assert analytic == pytest.approx(numeric, rel=0.05)


def _misfit_gradient_and_gathers(survey, wavelet=None):
    """L2-misfit gradient at a 2700 m/s start against a two-layer model's data, and the start's
    gathers, on ``survey`` (its own gradient sampling) and on a copy sampling every step."""
    every_step = survey.replace(
        simulation=survey.simulation.model_copy(update={"gradient_interval": 1}))
    true = torch.full((1, *survey.velocity_shape), 2500.0)
    true[:, 14:] = 3200.0
    observed = simulate(true, survey, device="cpu", wavelet=wavelet)
    results = []
    for setting in (survey, every_step):
        v = torch.full_like(true, 2700.0, requires_grad=True)
        simulated = simulate(v, setting, device="cpu", wavelet=wavelet)
        (simulated - observed).pow(2).sum().backward()
        results.append((v.grad, simulated.detach()))
    return results


def test_sparse_gradient_sampling_matches_every_step_gradient(tiny_survey):
    """The default (None) samples the gradient integral every few steps (11 at 1 ms and 15 Hz);
    the gathers are unchanged and the gradient matches the every-step gradient."""
    from seisinv.physics.grid import gradient_interval_for

    assert gradient_interval_for(tiny_survey, tiny_survey.dt) == 11
    (sparse, gathers), (every, every_gathers) = _misfit_gradient_and_gathers(tiny_survey)
    torch.testing.assert_close(gathers, every_gathers, rtol=0, atol=0)
    assert _relative_l2(every, sparse) < 2e-3
    assert every.abs().max() > 0


def test_gradient_sampling_follows_a_custom_wavelets_band(tiny_survey):
    """A 40 Hz wavelet passed to simulate has energy up to ~127 Hz: the interval shrinks to 3
    (11 would alias), and the gradient still matches the every-step one."""
    from seisinv.physics.grid import gradient_interval_for
    from seisinv.physics.wavelet import survey_wavelet

    wavelet = survey_wavelet(tiny_survey.replace(frequency=40.0))
    assert gradient_interval_for(tiny_survey, tiny_survey.dt, wavelet) == 3
    (sparse, _), (every, _) = _misfit_gradient_and_gathers(tiny_survey, wavelet)
    assert _relative_l2(every, sparse) < 2e-3


def test_direct_wave_matches_analytic_2d_solution():
    """Timing within one sample and amplitude within 3% of the exact 2-D Green's function."""
    velocity = 2000.0
    survey = _point_survey([100.0], [200.0, 300.0, 400.0])
    gathers = simulate(np.full((1, 40, 60), velocity, np.float32), survey, device="cpu")[0, 0]
    for receiver, offset in enumerate((100.0, 200.0, 300.0)):
        trace, exact = gathers[:, receiver].numpy(), _analytic_2d(survey, velocity, offset)
        lags = np.arange(-5, 6)
        fits = [np.dot(exact[5:-5], np.roll(trace, -lag)[5:-5]) for lag in lags]
        assert abs(lags[int(np.argmax(fits))]) <= 1
        # The 2-D wave peaks a little after r/v + wavelet delay (its tail); bound it.
        peak = int(np.argmax(trace))
        first_arrival = (offset / velocity + survey.wavelet_peak_time) / survey.dt
        assert first_arrival - 1 <= peak <= first_arrival + 12
        assert _relative_l2(exact[:300], trace[:300]) < 0.03


def test_reciprocity():
    """Swapping source and receiver gives the same trace in a heterogeneous model: the
    (v dt)^2 injection makes the scheme ``p_tt / v^2 - lap p = s delta``, whose operator is
    symmetric, so no velocity factor appears (the two ends sit at different velocities)."""
    v = np.full((1, 40, 60), 1800.0, np.float32)
    v[0, 15:] = 2600.0
    v[0, 25:, 30:] = 3200.0
    a, b = (100.0, 50.0), (400.0, 250.0)  # (x, z) metres

    def trace(src, rec):
        survey = _point_survey([src[0]], [rec[0]]).replace(source_z=src[1], receiver_z=rec[1])
        return simulate(v, survey, device="cpu")[0, 0, :, 0].numpy()

    assert _relative_l2(trace(a, b), trace(b, a)) < 1e-3


def test_no_reflections_from_the_absorbing_boundary():
    """A small homogeneous model agrees with the same survey inside a far larger one (whose
    edges are too far to return anything within the record)."""
    small = _point_survey([200.0], [100.0, 300.0, 500.0], nz=30, nx=60)
    big = small.replace(nz=120, nx=160, source_x=(700.0,), receiver_x=(600.0, 800.0, 1000.0))
    big = big.replace(source_z=small.source_z + 400.0, receiver_z=small.receiver_z + 400.0)
    near = simulate(np.full((1, 30, 60), 2000.0, np.float32), small, device="cpu")
    far = simulate(np.full((1, 120, 160), 2000.0, np.float32), big, device="cpu")
    assert _relative_l2(far, near) < 3e-3


@pytest.mark.parametrize("kind", ["homogeneous", "layered"])
def test_matches_openfwi_reference_scheme(tiny_survey, kind):
    v = np.full((1, *tiny_survey.velocity_shape), 2200.0, np.float32)
    if kind == "layered":
        v[0, 8:] = 2800.0
        v[0, 20:, 12:] = 3600.0
    survey = tiny_survey.replace(nt=250)
    reference = openfwi_reference(v, survey)
    assert _relative_l2(reference, simulate(v, survey, device="cpu")) < 0.01


def test_shots_and_wavelet_options_are_consistent(tiny_survey):
    survey = tiny_survey.replace(nt=150)
    v = np.full((1, *survey.velocity_shape), 2500.0, np.float32)
    full = simulate(v, survey, device="cpu")
    one = simulate(v, survey, device="cpu", shots=[2])
    assert torch.allclose(one[:, 0], full[:, 2], atol=1e-5)
    doubled = simulate(v, survey, device="cpu", shots=[0, 2], wavelet=2 * survey_wavelet(survey))
    assert torch.allclose(doubled, 2 * full[:, [0, 2]], rtol=1e-4, atol=1e-5)


def test_coarse_internal_grid_close_to_full_resolution():
    """Coarsening by 2 with slowness averaging and off-node points stays close to the fine run
    when the wavelength is many cells (here 2.5 m cells, 30 Hz, ~70 cells per wavelength)."""
    fine = OPENFWI.replace(
        name="fine",
        nz=80,
        nx=120,
        dz=2.5,
        dx=2.5,
        dt=0.00025,
        nt=800,
        frequency=30.0,
        wavelet_peak_time=None,
        source_x=(40.0, 250.0),
        source_z=12.5,
        receiver_x=tuple(10.0 * i + 5.0 for i in range(29)),
        receiver_z=7.5,
    )
    v = np.full((1, 80, 120), 2000.0, np.float32)
    v[0, 40:] = 2600.0
    reference = simulate(v, fine, device="cpu")
    coarse = fine.replace(simulation=Simulation(coarsen=2))
    assert _relative_l2(reference, simulate(v, coarse, device="cpu")) < 0.05


def test_receiver_one_node_past_the_grid_records_at_its_true_position():
    """Speed & Structure's x = 300 m receiver on a 0..299 m grid: the model is edge-replicated
    by one column, which equals simulating a one-column-wider replicated model."""
    survey = _point_survey([100.0], [200.0, 400.0], nz=30, nx=40, nt=300)  # grid 0..390 m
    v = np.full((1, 30, 40), 1800.0, np.float32)
    v[0, :, 25:] = 2400.0
    wider = survey.replace(nx=41)
    expected = simulate(np.concatenate([v, v[:, :, -1:]], axis=2), wider, device="cpu")
    assert torch.allclose(simulate(v, survey, device="cpu"), expected, atol=1e-6)


def test_bad_inputs_raise_seisinv_errors(tiny_survey):
    shape = (1, *tiny_survey.velocity_shape)
    with pytest.raises(DataError, match="shape"):
        simulate(np.full((1, 10, 10), 2500.0), tiny_survey, device="cpu")
    with pytest.raises(DataError, match="m/s"):
        simulate(np.full(shape, 2.5), tiny_survey, device="cpu")  # km/s given to an m/s survey
    with pytest.raises(DataError, match="finite"):
        simulate(np.full(shape, np.nan), tiny_survey, device="cpu")
    with pytest.raises(SeisinvError, match="shots"):
        simulate(np.full(shape, 2500.0), tiny_survey, device="cpu", shots=[7])
    with pytest.raises(SeisinvError, match="wavelet"):
        simulate(np.full(shape, 2500.0), tiny_survey, device="cpu", wavelet=np.zeros(5))
    damped = tiny_survey.replace(simulation=Simulation(boundary="damping"))
    with pytest.raises(ConfigError, match="boundary"):
        simulate(np.full(shape, 2500.0), damped, device="cpu")


def test_real_openfwi_sample_sign_amplitude_and_timing(shared_data):
    """The Kaggle GWI sample's near-offset first breaks imply a plausible near-surface
    velocity, and our zero-offset trace at that velocity has the same polarity, timing (best
    lag 0) and amplitude (within 5%)."""
    real = np.load(shared_data / "gwi_test_000039dca2.npy")
    assert real.shape == OPENFWI.gather_shape
    peaks = real[0, :400, 2:12].argmax(axis=0)  # direct-wave peak, receivers 20..110 m
    slope = np.polyfit(peaks * OPENFWI.dt, OPENFWI.dx * np.arange(2, 12), 1)[0]
    assert 1500.0 <= slope <= 4500.0
    v = np.full((1, *OPENFWI.velocity_shape), slope, np.float32)
    synthetic = simulate(v, OPENFWI, device="cpu", shots=[0])[0, 0, :150, 0].numpy()
    observed = real[0, :150, 0]
    lags = np.arange(-3, 4)
    fits = [np.dot(observed[3:-3], np.roll(synthetic, lag)[3:-3]) for lag in lags]
    assert lags[int(np.argmax(fits))] == 0
    assert np.corrcoef(observed, synthetic)[0, 1] > 0.99
    assert synthetic.max() / observed.max() == pytest.approx(1.0, rel=0.05)


def test_openfwi_model_file_layout_and_single_map_are_accepted(tiny_survey):
    v = np.full((2, *tiny_survey.velocity_shape), 2000.0, np.float32)
    v[1, 10:] = 3000.0
    expected = simulate(v, tiny_survey, device="cpu")
    np.testing.assert_array_equal(simulate(v[:, None], tiny_survey, device="cpu"), expected)
    np.testing.assert_array_equal(simulate(v[1], tiny_survey, device="cpu"), expected[1:])


@pytest.mark.parametrize("preset", ["openfwi", "speed-structure"])
def test_presets_step_at_their_own_time_step_without_sub_stepping(preset, monkeypatch):
    """deepwave would silently sub-step (multiplying the cost) if the pinned Courant number and
    maximum velocity did not allow the preset's internal dt; its RunInfo says what it did."""
    import deepwave

    from seisinv.physics.grid import plan_grid
    from seisinv.survey import PRESETS

    survey = PRESETS[preset].replace(nt=40)
    seen = {}
    real = deepwave.scalar

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        seen["ratio"], seen["dt"] = out.info.step_ratio, args[2]
        return out

    monkeypatch.setattr(deepwave, "scalar", spy)
    simulate(np.full((1, *survey.velocity_shape), survey.vmax, np.float32), survey, device="cpu")
    plan = plan_grid(survey, survey.vmax * survey.to_mps)
    assert seen["ratio"] == 1
    assert seen["dt"] == pytest.approx(survey.dt * plan.time_factor)


def test_openfwi_preset_absorbing_layer_stays_within_one_percent_of_openfwi_scheme():
    """The preset's PML (narrowed for speed, benchmarks/boundary.py) against OpenFWI's own
    120-cell sponge on a reduced OpenFWI grid with the full 1 s record, where boundary
    reflections would show; a 4-cell layer must do visibly worse, so the check can fail."""
    survey = OPENFWI.replace(nz=40, nx=40, source_x=(0.0, 390.0),
                             receiver_x=tuple(10.0 * i for i in range(40)))
    v = np.full((1, 40, 40), 1800.0, np.float32)
    v[0, 12:] = 2600.0
    v[0, 26:, 15:] = 3400.0
    reference = openfwi_reference(v, survey)
    preset_error = _relative_l2(reference, simulate(v, survey, device="cpu"))
    thin = survey.replace(simulation=survey.simulation.model_copy(update={"boundary_width": 4}))
    thin_error = _relative_l2(reference, simulate(v, thin, device="cpu"))
    assert OPENFWI.simulation.boundary_width == 8
    assert preset_error < 0.01
    assert thin_error > 2 * preset_error
