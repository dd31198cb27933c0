"""Velocity families: range, shape, seeding, depth trend, mixing, aliases, preview."""

from __future__ import annotations

import numpy as np
import pytest

from seisinv.errors import SeisinvError
from seisinv.geology import (
    FAMILIES,
    base_family_names,
    family_names,
    generate_velocity,
    mix_from_pool,
    mix_maps,
    resolve_family,
    sample_seed,
    velocity_sample,
)

ALL = ["flat", "curved", "flatfault", "curvefault", "fault", "style", "salt", "mix"]


def test_registry_holds_the_openfwi_families():
    assert set(ALL) <= set(family_names())
    assert "mix" not in base_family_names() and "fault" not in base_family_names()


@pytest.mark.parametrize("family", ALL)
def test_family_shape_range_dtype(family, tiny_survey):
    maps = generate_velocity(family, 6, tiny_survey, seed=3)
    assert maps.shape == (6, tiny_survey.nz, tiny_survey.nx)
    assert maps.dtype == np.float32
    assert np.isfinite(maps).all()
    assert maps.min() >= tiny_survey.vmin and maps.max() <= tiny_survey.vmax
    # Every single map has structure (no near-constant maps with a few m/s of contrast).
    assert maps.std(axis=(1, 2)).min() > 0.02 * (tiny_survey.vmax - tiny_survey.vmin)


@pytest.mark.parametrize("family", ALL)
def test_family_reproducible_and_seed_dependent(family, tiny_survey):
    a = generate_velocity(family, 3, tiny_survey, seed=11)
    b = generate_velocity(family, 3, tiny_survey, seed=11)
    c = generate_velocity(family, 3, tiny_survey, seed=12)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # Samples within one run differ from each other.
    assert not np.array_equal(a[0], a[1])


@pytest.mark.parametrize("family", ALL)
def test_mean_velocity_increases_with_depth(family, tiny_survey):
    maps = generate_velocity(family, 40, tiny_survey, seed=0)
    profile = maps.mean(axis=(0, 2))  # mean over samples and x: (nz,)
    quarter = len(profile) // 4
    assert profile[-quarter:].mean() > profile[:quarter].mean() + 0.1 * (
        tiny_survey.vmax - tiny_survey.vmin
    )
    # A clear positive trend, not just the two ends.
    assert np.corrcoef(np.arange(len(profile)), profile)[0, 1] > 0.8


def test_samples_do_not_depend_on_how_a_run_is_split(tiny_survey):
    whole = generate_velocity("curvefault", 5, tiny_survey, seed=7)
    tail = generate_velocity("curvefault", 2, tiny_survey, seed=7, start=3)
    np.testing.assert_array_equal(whole[3:], tail)
    one = velocity_sample("curvefault", tiny_survey, sample_seed(7, 4))
    np.testing.assert_array_equal(whole[4], one)


def test_sample_seeds_are_distinct():
    seeds = {sample_seed(s, i) for s in range(5) for i in range(200)}
    assert len(seeds) == 1000
    assert all(0 <= s < 2**63 for s in seeds)


def test_families_of_one_seed_are_not_the_same_layering(tiny_survey):
    flat = velocity_sample("flat", tiny_survey, 5)
    faulted = velocity_sample("flatfault", tiny_survey, 5)
    assert not np.array_equal(np.unique(flat), np.unique(faulted))


def test_fault_alias_resolves_to_a_recorded_concrete_family(tiny_survey):
    picks = {resolve_family("fault", sample_seed(0, i)) for i in range(30)}
    assert picks == {"flatfault", "curvefault"}
    seed = sample_seed(0, 3)
    concrete = resolve_family("fault", seed)
    np.testing.assert_array_equal(
        velocity_sample("fault", tiny_survey, seed), velocity_sample(concrete, tiny_survey, seed)
    )


def test_flat_layers_are_horizontal_and_faults_break_them(tiny_survey):
    flat = generate_velocity("flat", 5, tiny_survey, seed=1)
    assert (flat == flat[:, :, :1]).all()  # every row constant along x
    faulted = generate_velocity("flatfault", 10, tiny_survey, seed=1)
    assert any((m != m[:, :1]).any() for m in faulted)


def test_custom_velocity_range_is_respected(tiny_survey):
    maps = generate_velocity("salt", 5, tiny_survey, seed=2, vrange=(2000.0, 3000.0))
    assert maps.min() >= 2000.0 and maps.max() <= 3000.0


def test_velocity_range_outside_survey_is_an_error(tiny_survey):
    with pytest.raises(SeisinvError, match="outside survey"):
        generate_velocity("flat", 1, tiny_survey, seed=0, vrange=(1000.0, 3000.0))
    with pytest.raises(SeisinvError, match="below"):
        generate_velocity("flat", 1, tiny_survey, seed=0, vrange=(3000.0, 2000.0))


def test_unknown_family_is_an_error(tiny_survey):
    with pytest.raises(SeisinvError, match="unknown velocity family 'granite'.*flat"):
        generate_velocity("granite", 1, tiny_survey, seed=0)


def test_mix_maps_is_the_convex_combination_of_flipped_maps():
    v1 = np.arange(12, dtype=np.float32).reshape(3, 4)
    v2 = np.full((3, 4), 10.0, dtype=np.float32)
    got = mix_maps(v1, v2, 0.25, flip1=True, flip2=False)
    np.testing.assert_allclose(got, 0.25 * v1[:, ::-1] + 7.5)
    np.testing.assert_allclose(mix_maps(v1, v2, 1.0, False, True), v1)


def test_mix_from_pool_stays_in_pool_range(tiny_survey):
    pool = generate_velocity("flat", 4, tiny_survey, seed=0, vrange=(2000.0, 3000.0))
    rng = np.random.default_rng(0)
    mixed = np.stack([mix_from_pool(rng, pool) for _ in range(20)])
    assert mixed.min() >= 2000.0 - 1e-3 and mixed.max() <= 3000.0 + 1e-3
    via_sample = velocity_sample("mix", tiny_survey, 9, pool=pool)
    assert via_sample.min() >= 2000.0 - 1e-3 and via_sample.max() <= 3000.0 + 1e-3


def test_works_on_tall_narrow_grid_in_kms(tiny_survey):
    survey = tiny_survey.replace(nz=90, nx=24, units="km/s", vmin=1.5, vmax=4.5,
                                 receiver_x=tuple(10.0 * i for i in range(12)),
                                 source_x=(0.0, 230.0))
    for family in FAMILIES.names():
        maps = generate_velocity(family, 2, survey, seed=0)
        assert maps.shape == (2, 90, 24)
        assert 1.5 <= maps.min() and maps.max() <= 4.5


def test_preview_writes_a_png(tmp_path, tiny_survey):
    from seisinv.geology.preview import preview_families

    out = preview_families(["flat", "salt"], tiny_survey, tmp_path / "p.png", examples=2)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SeisinvError, match="png"):
        preview_families(["flat"], tiny_survey, tmp_path / "p.jpg")


@pytest.mark.parametrize("preset", ["openfwi", "speed-structure"])
def test_families_fill_the_challenge_grids(preset):
    from seisinv.survey import load_survey

    survey = load_survey(preset)
    for family in FAMILIES.names():
        maps = generate_velocity(family, 1, survey, seed=0)
        assert maps.shape == (1, survey.nz, survey.nx) and maps.dtype == np.float32
        assert survey.vmin <= maps.min() and maps.max() <= survey.vmax
        assert maps.std() > 0.02 * (survey.vmax - survey.vmin)  # structure, not a constant


def test_zero_samples_is_an_empty_stack(tiny_survey):
    assert generate_velocity("flat", 0, tiny_survey, seed=0).shape == (0, 32, 32)
