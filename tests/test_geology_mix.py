"""``mix`` options (weight range, flips off), the ``transform`` family, and how ``generate``'s
spec carries them."""

from __future__ import annotations

import numpy as np
import pytest

from seisinv.errors import SeisinvError
from seisinv.geology import (
    MixOptions,
    TransformOptions,
    generate_velocity,
    sample_seed,
    transform_map,
    velocity_sample,
)
from seisinv.geology.mix import mix_from_pool


def pool_of(survey, n=6):
    return generate_velocity("curved", n, survey, seed=2)


def test_mix_without_flips_is_exactly_the_weighted_sum(tiny_survey):
    pool = pool_of(tiny_survey, 2)
    options = MixOptions(flips=False, weight=(0.3, 0.7))
    for seed in range(20):
        mixed = mix_from_pool(np.random.default_rng(seed), pool, options)
        # Recover w from one cell where the two maps differ, then check every cell.
        diff = pool[0].astype(np.float64) - pool[1]
        k = np.unravel_index(np.argmax(np.abs(diff)), diff.shape)
        w = (mixed[k] - pool[1][k]) / diff[k]
        assert 0.3 - 1e-4 <= w <= 0.7 + 1e-4
        ok_ab = np.allclose(mixed, w * pool[0] + (1 - w) * pool[1], atol=1e-2)
        ok_ba = np.allclose(mixed, w * pool[1] + (1 - w) * pool[0], atol=1e-2)
        assert ok_ab or ok_ba  # which map comes first is drawn; none is flipped


def test_mix_defaults_flip_and_cover_the_unit_weight_range(tiny_survey):
    pool = pool_of(tiny_survey, 2)
    flipped = 0
    for seed in range(20):
        mixed = mix_from_pool(np.random.default_rng(seed), pool)
        rng = np.random.default_rng(seed)
        rng.choice(2, size=2, replace=False)
        w = rng.uniform(0, 1)
        plain = [w * pool[i] + (1 - w) * pool[1 - i] for i in (0, 1)]
        flipped += not any(np.allclose(mixed, p, atol=1e-2) for p in plain)
    assert flipped >= 10  # three of four draws flip at least one map


def test_mix_options_are_checked():
    with pytest.raises(SeisinvError, match="weight range"):
        MixOptions(weight=(0.8, 0.2))
    with pytest.raises(SeisinvError, match="weight range"):
        MixOptions(weight=(-0.1, 0.5))


def test_default_options_keep_the_fresh_mix_maps(tiny_survey):
    plain = generate_velocity("mix", 3, tiny_survey, seed=4)
    same = generate_velocity("mix", 3, tiny_survey, seed=4, mix_options=MixOptions())
    np.testing.assert_array_equal(plain, same)


def test_transform_is_seeded_and_stays_in_range(tiny_survey):
    pool = pool_of(tiny_survey)
    a = generate_velocity("transform", 8, tiny_survey, seed=3, pool=pool)
    b = generate_velocity("transform", 8, tiny_survey, seed=3, pool=pool)
    c = generate_velocity("transform", 8, tiny_survey, seed=4, pool=pool)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (8, tiny_survey.nz, tiny_survey.nx) and a.dtype == np.float32
    assert a.min() >= pool.min() - 1e-3 and a.max() <= pool.max() + 1e-3
    # New maps, not copies of the pool.
    assert all(np.abs(m - pool).max(axis=(1, 2)).min() > 1.0 for m in a)


def test_transform_map_is_a_crop_resized_to_the_grid():
    # A velocity ramp in depth: half the map's side re-sized to the whole grid is a ramp whose
    # step per cell is half the source's.
    ramp = np.broadcast_to(np.linspace(1500.0, 4500.0, 40)[:, None], (40, 40)).astype(np.float32)
    options = TransformOptions(crop=(0.5, 0.5), rotation_deg=0.0, shear=0.0, flip=0.0)
    out = transform_map(np.random.default_rng(0), ramp, options)
    np.testing.assert_allclose(out, out[:, :1] * np.ones((1, 40)), atol=1e-3)  # still flat
    step = np.diff(out[:, 0])
    np.testing.assert_allclose(step, 0.5 * np.diff(ramp[:, 0]).mean(), rtol=1e-3)
    assert out.min() >= 1500.0 and out.max() <= 4500.0


def test_transform_without_a_pool_warps_fresh_maps(tiny_survey):
    maps = generate_velocity("transform", 4, tiny_survey, seed=0)
    assert maps.min() >= tiny_survey.vmin and maps.max() <= tiny_survey.vmax
    one = velocity_sample("transform", tiny_survey, sample_seed(0, 2))
    np.testing.assert_array_equal(maps[2], one)


def test_transform_options_are_checked():
    with pytest.raises(SeisinvError, match="crop"):
        TransformOptions(crop=(0.0, 1.0))


def test_generate_spec_expands_openfwi_and_records_mix_options(tiny_survey):
    from seisinv.generation import GenerateSpec

    spec = GenerateSpec(survey=tiny_survey, families=("openfwi",), n=10)
    assert len(spec.families) == 10 and spec.families[0] == "FlatVel_A"
    plain = GenerateSpec(survey=tiny_survey, families=("mix",), n=2).identity()
    assert "mix_flips" not in plain and "mix_weight" not in plain  # old runs resume unchanged
    spec = GenerateSpec(survey=tiny_survey, families=("mix",), n=2, mix_flips=False,
                        mix_weight=(0.3, 0.7))
    assert spec.identity()["mix_flips"] is False and spec.identity()["mix_weight"] == [0.3, 0.7]
    assert spec.mix_options == MixOptions(flips=False, weight=(0.3, 0.7))
    with pytest.raises(SeisinvError, match="weight range"):
        GenerateSpec(survey=tiny_survey, families=("mix",), n=2, mix_weight=(0.9, 0.1))
    with pytest.raises(SeisinvError, match="mix_from"):
        GenerateSpec(survey=tiny_survey, families=("flat",), n=2, mix_from="x.npy")
    GenerateSpec(survey=tiny_survey, families=("transform",), n=2, mix_from="x.npy")


def test_cli_expands_openfwi_and_passes_mix_options(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import seisinv.geology.preview
    from seisinv.cli.main import app
    from seisinv.geology import GROUPS

    asked = {}

    def fake_preview(families, survey, out, **options):  # drawing 10 rows takes seconds
        asked["families"] = families
        return out

    monkeypatch.setattr(seisinv.geology.preview, "preview_families", fake_preview)
    result = CliRunner().invoke(app, ["generate", "--preview", "openfwi,salt", "--out",
                                      str(tmp_path / "openfwi.png")])
    assert result.exit_code == 0, result.output
    assert asked["families"] == [*GROUPS["openfwi"], "salt"]
    # The spec the command builds (the generation job itself is tested in test_generate.py).
    import types

    import seisinv.generation

    def fake_run(spec, out, **options):
        asked["spec"] = spec
        return types.SimpleNamespace(written=0, skipped=0, seconds=0.0, manifest_rows=0)

    monkeypatch.setattr(seisinv.generation, "run_generate", fake_run)
    result = CliRunner().invoke(app, [
        "generate", "--families", "openfwi,mix", "--n", "2", "--no-mix-flips",
        "--mix-weight", "0.3,0.7", "--out", str(tmp_path / "mixes"),
    ])
    assert result.exit_code == 0, result.output
    spec = asked["spec"]
    assert spec.families == (*GROUPS["openfwi"], "mix")
    assert spec.identity()["mix_flips"] is False and spec.identity()["mix_weight"] == [0.3, 0.7]
    result = CliRunner().invoke(app, ["generate", "--families", "mix", "--mix-weight", "0.7,0.2",
                                      "--out", str(tmp_path / "bad")])
    assert result.exit_code != 0 and "--mix-weight" in str(result.exception)


def test_generate_job_draws_plain_mixes_from_the_spec(tiny_survey):
    from seisinv.generation import GenerateSpec
    from seisinv.generation.job import _chunk_velocities

    pool = pool_of(tiny_survey, 2)
    spec = GenerateSpec(survey=tiny_survey, families=("mix",), n=4, mix_flips=False,
                        mix_weight=(0.3, 0.7))
    maps, families, _ = _chunk_velocities(spec, [0, 1, 2, 3], pool)
    assert families == ["mix"] * 4
    for mixed in maps:  # each is w*V1 + (1-w)*V2 of the two pool maps, unflipped
        diff = pool[0].astype(np.float64) - pool[1]
        k = np.unravel_index(np.argmax(np.abs(diff)), diff.shape)
        w = (mixed[k] - pool[1][k]) / diff[k]
        assert 0.3 - 1e-4 <= w <= 0.7 + 1e-4 or 0.3 - 1e-4 <= 1 - w <= 0.7 + 1e-4
        np.testing.assert_allclose(mixed, w * pool[0] + (1 - w) * pool[1], atol=1e-2)


def test_generate_job_passes_the_transform_options_and_records_them(tiny_survey):
    """``transform_*`` fields reach the warp (no crop, no rotation, no shear, no flip: the pool
    map itself) and are recorded in the identity only when not the defaults."""
    from seisinv.generation import GenerateSpec
    from seisinv.generation.job import _chunk_velocities

    pool = pool_of(tiny_survey, 1)
    plain = GenerateSpec(survey=tiny_survey, families=("transform",), n=2, mix_from="x.npy")
    assert "transform" not in plain.identity()
    spec = GenerateSpec(survey=tiny_survey, families=("transform",), n=2, mix_from="x.npy",
                        transform_crop=(1.0, 1.0), transform_rotation_deg=0.0,
                        transform_shear=0.0, transform_flip=0.0)
    assert spec.identity()["transform"] == {"crop": [1.0, 1.0], "rotation_deg": 0.0,
                                            "shear": 0.0, "flip": 0.0}
    maps, families, _ = _chunk_velocities(spec, [0, 1], pool)
    assert families == ["transform"] * 2
    for warped in maps:
        np.testing.assert_allclose(warped, pool[0], atol=1e-3)
    with pytest.raises(SeisinvError, match="crop"):
        GenerateSpec(survey=tiny_survey, families=("transform",), n=2, transform_crop=(0, 1))
