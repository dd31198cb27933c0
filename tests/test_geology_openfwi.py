"""The ten OpenFWI families: registry, range, ordering, layer counts, faults, seeding, and the
fitted statistics against real OpenFWI maps (skipped without ../shared)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seisinv.geology import FAMILIES, GROUPS, expand_families, generate_velocity
from seisinv.geology.openfwi import FLAT_STACK, OPENFWI_FAMILIES
from seisinv.geology.stats import interface_relief, layer_count
from seisinv.survey import OPENFWI

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "openfwi_real_train_maps.npz"
VEL = ("FlatVel", "CurveVel")


def maps_of(family: str, n: int = 60, seed: int = 0) -> np.ndarray:
    return generate_velocity(family, n, OPENFWI, seed)


def test_all_ten_are_registered_and_grouped():
    names = [f"{kind}_{v}" for kind in (*VEL, "FlatFault", "CurveFault", "Style") for v in "AB"]
    assert sorted(names) == sorted(OPENFWI_FAMILIES) == sorted(GROUPS["openfwi"])
    assert all(name in FAMILIES for name in names)
    assert expand_families(["flat", "openfwi"]) == ("flat", *GROUPS["openfwi"])


@pytest.mark.parametrize("family", OPENFWI_FAMILIES)
def test_values_inside_openfwi_range_and_seeded(family):
    maps = maps_of(family, 12, seed=5)
    assert maps.shape == (12, 70, 70) and maps.dtype == np.float32
    assert maps.min() >= 1500.0 and maps.max() <= 4500.0
    np.testing.assert_array_equal(maps, maps_of(family, 12, seed=5))
    assert not np.array_equal(maps, maps_of(family, 12, seed=6))
    # Every map has structure, and the set spans most of the range.
    assert maps.std(axis=(1, 2)).min() > 30.0
    assert maps.max() - maps.min() > 2000.0


@pytest.mark.parametrize("kind", VEL)
def test_a_increases_with_depth_and_b_does_not_always(kind):
    a, b = maps_of(f"{kind}_A"), maps_of(f"{kind}_B")
    assert (np.diff(a, axis=1) >= 0).all()  # every column of every A map
    decreasing = [(np.diff(m, axis=0) < 0).any() for m in b]
    assert 0.5 < np.mean(decreasing)  # B: random order, mostly with a decrease somewhere


@pytest.mark.parametrize("kind", VEL)
def test_layer_counts_within_the_fitted_range(kind):
    maps = maps_of(f"{kind}_A", 100)
    distinct = np.array([len(np.unique(m)) for m in maps])
    lo = 3 if kind == "FlatVel" else 4
    assert distinct.min() >= lo - 1 and distinct.max() <= max(r.layers for r in FLAT_STACK) + 1
    assert set(range(lo, 9)) <= set(distinct.tolist())  # every fitted count occurs


def test_flat_layers_are_flat_and_curved_ones_fold():
    flat, curved = maps_of("FlatVel_A"), maps_of("CurveVel_A")
    assert (flat == flat[:, :, :1]).all()
    assert np.median(interface_relief(curved)) > 2.0


@pytest.mark.parametrize("family", ["FlatFault_A", "FlatFault_B"])
def test_faults_offset_flat_layers_sideways(family):
    # FlatVel maps have no lateral change at all; a fault's throw offsets the layers.
    faulted = maps_of(family, 40)
    steps = np.abs(np.diff(faulted, axis=2)).max(axis=(1, 2))
    assert np.mean(steps > 100.0) > 0.8


def test_faults_break_the_column_order_of_a_maps():
    # A CurveVel_A column is the sorted stack shifted up or down, so it never decreases; a fault
    # whose footwall is read from shallower than its hanging wall repeats layers in a column.
    decreasing = [(np.diff(m, axis=0) < 0).any() for m in maps_of("CurveFault_A", 40)]
    assert np.mean(decreasing) > 0.3
    assert not any((np.diff(m, axis=0) < 0).any() for m in maps_of("CurveVel_A", 40))


def test_fault_b_is_smoothed_and_a_is_sharp():
    a, b = maps_of("CurveFault_A", 10), maps_of("CurveFault_B", 10)
    assert max(len(np.unique(m)) for m in a) <= 10
    assert min(len(np.unique(m)) for m in b) > 100


def test_style_b_is_rougher_than_style_a():
    a, b = maps_of("Style_A", 30), maps_of("Style_B", 30)
    rough = lambda m: np.abs(np.diff(m, axis=2)).mean()  # noqa: E731
    assert rough(b) > 1.2 * rough(a)
    # The background makes velocity rise with depth on average.
    profile = np.concatenate([a, b]).mean(axis=(0, 2))
    assert profile[-10:].mean() > profile[:10].mean()


def test_families_rescale_to_other_grids(tiny_survey):
    for family in OPENFWI_FAMILIES:
        maps = generate_velocity(family, 2, tiny_survey, seed=0)
        assert maps.shape == (2, 32, 32)
        assert maps.min() >= tiny_survey.vmin and maps.max() <= tiny_survey.vmax


@pytest.mark.skipif(not REAL.exists(), reason="needs ../shared/data/openfwi_real_train_maps.npz")
@pytest.mark.parametrize("family", ["FlatVel_A", "CurveVel_A"])
def test_statistics_match_the_real_maps(family):
    with np.load(REAL) as data:
        real = data[family][:300].astype(np.float64)
    ours = generate_velocity(family, 300, OPENFWI, seed=1).astype(np.float64)
    # Distinct velocities per map: the same range and a close mean.
    count_real = np.array([len(np.unique(m)) for m in real])
    count_ours = np.array([len(np.unique(m)) for m in ours])
    assert abs(count_real.mean() - count_ours.mean()) < 0.5
    assert abs(np.median(layer_count(real)) - np.median(layer_count(ours))) <= 1
    # Value histograms (6 bins over 1500-4500): each share within 4 points.
    edges = np.linspace(1500, 4500, 7)
    share = lambda m: np.histogram(m, bins=edges)[0] / m.size  # noqa: E731
    assert np.abs(share(real) - share(ours)).max() < 0.04
    # Vertical and lateral gradients within 15 % of the real mean.
    for axis in (1, 2):
        g_real = np.abs(np.diff(real, axis=axis)).mean()
        g_ours = np.abs(np.diff(ours, axis=axis)).mean()
        assert abs(g_ours - g_real) <= 0.15 * g_real + 1e-9
    # Fold relief: median within 1.5 cells.
    assert abs(np.median(interface_relief(real)) - np.median(interface_relief(ours))) < 1.5
