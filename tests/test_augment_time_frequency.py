"""Time-frequency augmentations: band limiting and spectral masking of the gathers, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from seisinv.data.augment import build_augment
from seisinv.errors import ConfigError
from seisinv.survey import OPENFWI

NT = 200


def tones(*fractions):
    """(2 shots, NT, 3 receivers) sum of cosines at the given fractions of Nyquist (exact bins)."""
    t = np.arange(NT)
    trace = sum(np.cos(np.pi * f * t) for f in fractions)
    return np.broadcast_to(trace[None, :, None], (2, NT, 3)).astype(np.float32).copy()


def amplitude(gathers, fraction):
    """Spectral amplitude of the first trace at ``fraction`` of Nyquist."""
    spectrum = np.abs(np.fft.rfft(gathers[0, :, 0]))
    return spectrum[round(fraction * (len(spectrum) - 1))] / (NT / 2)


def test_band_limit_keeps_the_band_and_removes_the_rest():
    step = build_augment([{"name": "band_limit", "low": [0.1, 0.1], "high": [0.5, 0.5],
                           "p": 1.0}], OPENFWI)
    out, velocity = step(tones(0.05, 0.3, 0.8), None, np.random.default_rng(0))
    assert velocity is None and out.dtype == np.float32 and out.shape == (2, NT, 3)
    assert amplitude(out, 0.3) == pytest.approx(1.0, abs=1e-4)
    assert amplitude(out, 0.05) < 1e-4 and amplitude(out, 0.8) < 1e-4


def test_spectral_mask_zeroes_at_most_the_masked_bands():
    rng = np.random.default_rng(1)
    gathers = rng.standard_normal((2, NT, 3)).astype(np.float32)
    step = build_augment([{"name": "spectral_mask", "masks": 3, "width": 0.1, "p": 1.0}], OPENFWI)
    out, _ = step(gathers, None, np.random.default_rng(5))
    before = np.abs(np.fft.rfft(gathers, axis=1))
    after = np.abs(np.fft.rfft(out, axis=1))
    zeroed = np.all(after < 1e-4 * before.max(), axis=(0, 2))
    n_freq = NT // 2 + 1
    assert 0 < zeroed.sum() <= 3 * int(0.1 * (n_freq - 1))
    # Bins outside the masks are untouched.
    np.testing.assert_allclose(after[:, ~zeroed], before[:, ~zeroed], rtol=1e-3, atol=1e-3)


def test_time_frequency_steps_are_seeded_and_respect_p():
    gathers = np.random.default_rng(2).standard_normal((2, NT, 3)).astype(np.float32)
    for spec in ({"name": "band_limit", "p": 1.0}, {"name": "spectral_mask", "p": 1.0}):
        step = build_augment([spec], OPENFWI)
        a, _ = step(gathers, None, np.random.default_rng(7))
        b, _ = step(gathers, None, np.random.default_rng(7))
        c, _ = step(gathers, None, np.random.default_rng(8))
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, c)
        never = build_augment([{**spec, "p": 0.0}], OPENFWI)
        assert never(gathers, None, np.random.default_rng(7))[0] is gathers


def test_bad_time_frequency_parameters_are_config_errors():
    for spec, message in (({"name": "band_limit", "low": [0.2, 0.6], "high": [0.5, 1.0]}, "below"),
                          ({"name": "band_limit", "high": [0.5, 1.5]}, "fractions of the Nyquist"),
                          ({"name": "band_limit", "low": 0.1}, "pair"),
                          ({"name": "spectral_mask", "masks": -1}, ">= 0"),
                          ({"name": "spectral_mask", "width": 2.0}, r"\[0, 1\]")):
        with pytest.raises(ConfigError, match=message):
            build_augment([spec], OPENFWI)
