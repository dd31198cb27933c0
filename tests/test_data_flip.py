"""Horizontal flip against the physics: a flipped sample must equal the sample simulated from the
flipped velocity (exactly for mirror-symmetric shots and for the "resimulate" strategy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seisinv.data.flip import flip_gathers, flip_sample, flip_velocity, mirror_map
from seisinv.data.sample import Sample
from seisinv.survey import OPENFWI, SPEED_STRUCTURE


@pytest.fixture(scope="module")
def mirror_survey():
    """32 x 32 at 10 m, 300 steps; receivers on every cell (mirror exactly); sources at cells
    0, 15, 31: the first and last mirror onto each other, the middle one mirrors to 16 (absent)."""
    return OPENFWI.replace(name="tiny-mirror", nz=32, nx=32, nt=300, source_x=(0.0, 150.0, 310.0),
                           receiver_x=tuple(10.0 * i for i in range(32)))


@pytest.fixture(scope="module")
def simulated(mirror_survey):
    """An asymmetric velocity, its gathers and the gathers of its mirror image."""
    from seisinv.physics import simulate

    z = np.linspace(1800, 3500, 32, dtype=np.float32)[:, None]
    velocity = z + 300 * np.sin(np.arange(32, dtype=np.float32) / 5)[None, :]
    velocity[20:25, 5:12] = 4000  # a block left of centre
    gathers = simulate(velocity[None], mirror_survey, device="cpu")[0].numpy()
    mirrored = simulate(flip_velocity(velocity)[None], mirror_survey, device="cpu")[0].numpy()
    return velocity, gathers, mirrored


def relative_error(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_mirror_maps_of_the_challenge_surveys():
    fwi = mirror_map(OPENFWI)
    assert fwi.shots.tolist() == [4, 3, 2, 1, 0]
    assert fwi.shots_exact.tolist() == [True, True, False, True, True]  # 34 mirrors to 35
    assert fwi.receivers.tolist() == list(range(69, -1, -1)) and fwi.receivers_exact.all()
    ss = mirror_map(SPEED_STRUCTURE)
    assert ss.shots.tolist() == [4, 3, 2, 1, 0]
    assert ss.shot_offset_m.tolist() == [0, 1, 1, 1, 0]  # 74 -> 225, 149 -> 150, 224 -> 75
    assert ss.receiver_offset_m.max() == 1 and not ss.exact


def test_flip_velocity_and_gathers_numpy_and_torch(mirror_survey):
    v = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(flip_velocity(v), v[:, ::-1])
    assert torch.equal(flip_velocity(torch.from_numpy(v)), torch.from_numpy(v[:, ::-1].copy()))
    g = np.random.default_rng(0).standard_normal((2, *mirror_survey.gather_shape)).astype(
        np.float32)
    flipped = flip_gathers(g, mirror_survey)
    np.testing.assert_array_equal(flipped[1, 0], g[1, 2, :, ::-1])  # shot order and receivers
    assert torch.equal(flip_gathers(torch.from_numpy(g), mirror_survey),
                       torch.from_numpy(flipped))
    # Where the geometry mirrors exactly, flipping twice is the identity.
    twice = flip_gathers(flipped, mirror_survey)
    np.testing.assert_array_equal(twice[:, [0, 2]], g[:, [0, 2]])


def test_resimulate_flip_equals_simulating_the_flipped_velocity(mirror_survey, simulated):
    velocity, gathers, mirrored = simulated
    flipped = flip_sample(Sample("a", gathers, velocity), mirror_survey, strategy="resimulate")
    np.testing.assert_array_equal(flipped.velocity, velocity[:, ::-1])
    # Same simulator, same (mirror-symmetric) stencil and boundaries: float rounding only.
    assert relative_error(flipped.gathers, mirrored) < 1e-5


def test_nearest_flip_is_exact_for_mirrored_shots_and_approximate_elsewhere(mirror_survey,
                                                                            simulated):
    velocity, gathers, mirrored = simulated
    flipped = flip_sample(Sample("a", gathers, None), mirror_survey, strategy="nearest")
    assert flipped.velocity is None
    for shot in (0, 2):
        assert relative_error(flipped.gathers[shot], mirrored[shot]) < 1e-5
    # The middle shot sits one cell (10 m, a tenth of a wavelength) from its mirror: a real error.
    error = relative_error(flipped.gathers[1], mirrored[1])
    assert 0.05 < error < 1.0


def test_auto_flip_augmentation_resimulates_when_it_is_cheap(mirror_survey, simulated):
    from seisinv.data.augment import build_augment

    velocity, gathers, mirrored = simulated
    augment = build_augment([{"name": "flip", "p": 1.0}], mirror_survey)  # strategy "auto"
    g, v = augment(gathers, velocity, np.random.default_rng(0))
    assert relative_error(g, mirrored) < 1e-5
    np.testing.assert_array_equal(v, velocity[:, ::-1])
    g, v = augment(gathers, None, np.random.default_rng(0))  # unlabelled: nearest
    assert v is None and relative_error(g[1], mirrored[1]) > 0.05
