"""Transforms: shapes, inverses, resampling accuracy, and the named pipeline with fitted state."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.signal
import torch

from seisinv.data import build_pipeline, denormalize_velocity, normalize_velocity
from seisinv.data import transforms as T
from seisinv.data.pipeline import Pipeline
from seisinv.errors import ConfigError, DataError, SeisinvError
from seisinv.survey import OPENFWI, SPEED_STRUCTURE


def random_gathers(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_normalize_velocity_round_trip_numpy_and_torch():
    v = np.array([[1500.0, 3000.0], [4500.0, 2000.0]], dtype=np.float32)
    n = normalize_velocity(v, OPENFWI)
    np.testing.assert_allclose(n, [[0.0, 0.5], [1.0, 1 / 6]], atol=1e-7)
    np.testing.assert_allclose(denormalize_velocity(n, OPENFWI), v, rtol=1e-6)
    t = torch.tensor([1.5, 4.5])
    assert torch.allclose(normalize_velocity(t, SPEED_STRUCTURE), torch.tensor([0.0, 1.0]))


def test_pad_unpad_side_by_side_time_to_width_are_inverse():
    g = random_gathers((2, 5, 40, 31))  # a batch of 2
    padded = T.pad_receivers(g, 32)
    assert padded.shape == (2, 5, 40, 32) and (padded[..., 31] == 0).all()
    np.testing.assert_array_equal(T.unpad_receivers(padded, 31), g)
    edge = T.pad_receivers(g, 33, mode="edge")
    np.testing.assert_array_equal(edge[..., 32], g[..., 30])

    wide = T.shots_side_by_side(g)
    assert wide.shape == (2, 1, 40, 5 * 31)
    np.testing.assert_array_equal(wide[1, 0, :, 2 * 31 + 4], g[1, 2, :, 4])
    np.testing.assert_array_equal(T.shots_from_side_by_side(wide, 5), g)

    image = T.time_to_width(g, 4)
    assert image.shape == (2, 5, 10, 4 * 31)
    # column c*R + r of row t is receiver r at time c*T/chunks + t
    np.testing.assert_array_equal(image[0, 3, 7, 2 * 31 + 6], g[0, 3, 2 * 10 + 7, 6])
    np.testing.assert_array_equal(T.width_to_time(image, 4), g)
    with pytest.raises(DataError, match="do not split"):
        T.time_to_width(g, 3)


def test_resample_keeps_a_band_limited_signal_and_its_timing():
    # A 15 Hz Ricker at 0.1 ms sampling, peak at 0.3 s, resampled 10001 -> 2048 samples.
    dt, n, m = 1e-4, 10001, 2048
    t = np.arange(n) * dt
    arg = (np.pi * 15 * (t - 0.3)) ** 2
    trace = ((1 - 2 * arg) * np.exp(-arg)).astype(np.float32)
    g = np.broadcast_to(trace[None, :, None], (2, n, 3)).copy()
    out = T.resample_time(g, m)
    assert out.shape == (2, m, 3) and out.dtype == np.float32
    new_t = np.arange(m) * dt * n / m
    arg = (np.pi * 15 * (new_t - 0.3)) ** 2
    exact = (1 - 2 * arg) * np.exp(-arg)
    assert np.abs(out[0, :, 0] - exact).max() < 1e-3
    assert abs(new_t[np.argmax(out[0, :, 1])] - 0.3) <= dt * n / m / 2


def test_resample_rejects_aliases_like_resample_poly():
    # A tone above the new Nyquist must vanish, not fold back into the band.
    n, m = 10001, 2048
    tone = np.sin(2 * np.pi * 0.15 * np.arange(n)).astype(np.float32)  # 0.15 cycles/sample
    out = T.resample_time(tone[None, :, None], m)[0, 200:-200, 0]  # away from the edges
    assert np.abs(out).max() < 0.01
    reference = scipy.signal.resample_poly(tone, m, n)[200:-200]
    assert np.abs(reference).max() < 0.01
    # ...while a tone at half the new Nyquist frequency keeps its amplitude.
    nyquist = 0.5 * m / n
    tone = np.sin(2 * np.pi * 0.5 * nyquist * np.arange(n)).astype(np.float32)
    out = T.resample_time(tone[None, :, None], m)[0, 200:-200, 0]
    assert abs(np.abs(out).max() - 1) < 0.01


def test_resample_upsamples_smoothly():
    x = np.sin(2 * np.pi * np.arange(100) / 25).astype(np.float32)
    out = T.resample_time(x[None, :, None], 400)[0, 20:-20, 0]
    exact = np.sin(2 * np.pi * (np.arange(400) / 4) / 25)[20:-20]
    assert np.abs(out - exact).max() < 5e-3


def test_pipeline_shapes_and_torch_input():
    survey = SPEED_STRUCTURE
    steps = [{"name": "crop", "length": 10000}, {"name": "time_to_width", "chunks": 10},
             {"name": "pad_receivers", "to": 320}]
    pipeline = build_pipeline(steps, survey)
    assert pipeline.output_shape() == (5, 1000, 320)
    wide = build_pipeline([{"name": "resample", "length": 1000}, {"name": "shots_side_by_side"}],
                          OPENFWI)
    assert wide.output_shape() == (1, 1000, 350)
    g = random_gathers((2, *OPENFWI.gather_shape))
    out = wide(torch.from_numpy(g))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 1, 1000, 350)
    np.testing.assert_array_equal(out.numpy(), wide(g))


def test_pipeline_fit_state_round_trip(tmp_path):
    survey = OPENFWI.replace(name="tiny", nt=20, source_x=(0.0,), receiver_x=(0.0, 10.0))

    class Source(list):
        pass

    from seisinv.data.sample import Sample

    rng = np.random.default_rng(0)
    source = Source(Sample(str(i), (3 + 2 * rng.standard_normal((1, 20, 2))).astype(np.float32))
                    for i in range(10))
    steps = [{"name": "scale", "factor": 10.0}, {"name": "zscore"},
             {"name": "clip", "low": -3, "high": 3}]
    pipeline = build_pipeline(steps, survey)
    with pytest.raises(DataError, match="needs dataset statistics"):
        pipeline(source[0].gathers)
    pipeline.fit(source, max_samples=None)
    everything = np.concatenate([s.gathers.ravel() * 10 for s in source])
    stats = pipeline.steps[1].stats
    assert stats["mean"] == pytest.approx(everything.mean(), rel=1e-5)
    assert stats["std"] == pytest.approx(everything.std(), rel=1e-5)
    out = np.concatenate([pipeline(s.gathers).ravel() for s in source])
    assert abs(out.mean()) < 0.05 and out.max() <= 3 and out.min() >= -3

    state = json.loads(json.dumps(pipeline.state()))  # survives JSON (and YAML) as plain data
    restored = Pipeline.from_state(state)
    np.testing.assert_array_equal(restored(source[3].gathers), pipeline(source[3].gathers))
    assert restored.survey == survey


def test_pipeline_errors_name_the_step():
    with pytest.raises(SeisinvError, match="unknown transform 'blur'"):
        build_pipeline([{"name": "blur"}], OPENFWI)
    with pytest.raises(ConfigError, match=r"transforms\[1\] \(resample\)"):
        build_pipeline([{"name": "scale", "factor": 2}, {"name": "resample", "len": 3}], OPENFWI)
    with pytest.raises(ConfigError, match="mapping with a 'name'"):
        build_pipeline(["resample"], OPENFWI)


def test_pipeline_pickles_with_its_statistics():
    import pickle

    pipeline = build_pipeline([{"name": "scale", "factor": 2.0}, {"name": "zscore"}], OPENFWI)
    pipeline.steps[1].stats = {"mean": 1.0, "std": 4.0}
    copy = pickle.loads(pickle.dumps(pipeline))
    g = random_gathers((5, 1000, 70))
    np.testing.assert_array_equal(copy(g), pipeline(g))
    np.testing.assert_allclose(copy(g), (2 * g - 1) / 4, rtol=1e-6)
