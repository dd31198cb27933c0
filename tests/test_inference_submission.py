"""Submission writers: round trips, and refusal of every kind of invalid input."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from seisinv.errors import DataError
from seisinv.inference import submission
from seisinv.inference.store import PredictionStore
from seisinv.survey import OPENFWI, SPEED_STRUCTURE


@pytest.fixture
def small_ss():
    """A Speed & Structure-like survey (x-major on disk, km/s) on a small grid: 12 deep, 5 wide."""
    return SPEED_STRUCTURE.replace(
        name="ss-small", nz=12, nx=5, source_x=(0.0, 4.0), shot_names=("1", "5"),
        receiver_x=(0.0, 4.0), source_z=2.0, receiver_z=1.0,
    )


@pytest.fixture
def small_gwi():
    """An OpenFWI-like survey with a 6 x 8 grid (depth x horizontal), m/s."""
    return OPENFWI.replace(name="gwi-small", nz=6, nx=8, source_x=(0.0, 70.0), receiver_x=(0.0, 70.0))


def maps(survey, ids, seed=0):
    rng = np.random.default_rng(seed)
    return {i: rng.uniform(survey.vmin, survey.vmax, survey.velocity_shape).astype(np.float32) for i in ids}


def test_speed_structure_round_trip_keys_dtype_and_disk_layout(tmp_path, small_ss):
    preds = maps(small_ss, ["a", "b", "c"])
    path = submission.write_speed_structure(tmp_path / "sub.npz", preds, small_ss, ["c", "b", "a"])
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["a", "b", "c"]
        raw = npz["a"]
    # On disk: (horizontal, depth), float64, km/s, i.e. the transpose of the internal map.
    assert raw.shape == (5, 12) and raw.dtype == np.float64
    np.testing.assert_allclose(raw, preds["a"].T.astype(np.float64))
    back = submission.read_speed_structure(path, small_ss)
    for key, value in preds.items():
        np.testing.assert_allclose(back[key], value, rtol=0, atol=0)


def test_speed_structure_file_is_uncompressed(tmp_path, small_ss):
    import zipfile

    path = submission.write_speed_structure(tmp_path / "s.npz", maps(small_ss, ["x"]), small_ss)
    with zipfile.ZipFile(path) as zf:
        assert all(info.compress_type == zipfile.ZIP_STORED for info in zf.infolist())


def test_kaggle_round_trip_rows_columns_and_units(tmp_path, small_gwi):
    preds = maps(small_gwi, ["000039dca2", "ff01"])
    path = submission.write_kaggle_gwi(tmp_path / "sub.csv", preds, small_gwi, ["ff01", "000039dca2"])
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["oid_ypos", "x_1", "x_3", "x_5", "x_7"]
    assert rows[1][0] == "000039dca2_y_0" and rows[6][0] == "000039dca2_y_5"
    assert len(rows) == 1 + 2 * small_gwi.nz
    # Row = depth index, column x_k = horizontal index k.
    assert float(rows[3][2]) == pytest.approx(float(preds["000039dca2"][2, 3]), rel=1e-6)
    back = submission.read_kaggle_gwi(path)
    np.testing.assert_allclose(back["ff01"], preds["ff01"][:, 1::2], rtol=1e-6)


def test_kaggle_full_openfwi_header_matches_competition(tmp_path):
    preds = {"000039dca2": np.full(OPENFWI.velocity_shape, 3000.0, np.float32)}
    path = submission.write_submission("kaggle-gwi", tmp_path / "s.csv", preds, OPENFWI)
    header, first = path.read_text().splitlines()[:2]
    assert header.split(",")[:3] == ["oid_ypos", "x_1", "x_3"] and header.endswith(",x_69")
    assert len(header.split(",")) == 36
    assert first.startswith("000039dca2_y_0,3000,")


@pytest.mark.parametrize("fmt", ["speed-structure", "kaggle-gwi"])
@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "have no prediction: 'c'"),
        ("extra", "not in the test set: 'z'"),
        ("shape", "shape"),
        ("nan", "NaN"),
        ("range", "outside the survey's"),
    ],
)
def test_writers_refuse_invalid_input_and_leave_no_file(tmp_path, small_ss, small_gwi, fmt, case, message):
    survey = small_ss if fmt == "speed-structure" else small_gwi
    writer = submission.write_speed_structure if fmt == "speed-structure" else submission.write_kaggle_gwi
    preds = maps(survey, ["a", "b", "c"])
    expected = ["a", "b", "c"]
    if case == "missing":
        del preds["c"]
    elif case == "extra":
        preds["z"] = preds["a"]
    elif case == "shape":
        preds["b"] = preds["b"][:, :-1]
    elif case == "nan":
        preds["b"][1, 1] = np.nan
    elif case == "range":
        preds["b"][0, 0] = survey.vmax * 2
    out = tmp_path / "sub.out"
    with pytest.raises(DataError, match=message):
        writer(out, preds, survey, expected)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind either


def test_invalid_submission_keeps_an_existing_file(tmp_path, small_ss):
    out = tmp_path / "sub.npz"
    submission.write_speed_structure(out, maps(small_ss, ["a"]), small_ss, ["a"])
    before = out.read_bytes()
    with pytest.raises(DataError):
        submission.write_speed_structure(out, maps(small_ss, ["a"]), small_ss, ["a", "b"])
    assert out.read_bytes() == before


def test_write_submission_refuses_a_survey_that_does_not_fit_the_format(tmp_path, small_ss, small_gwi):
    with pytest.raises(DataError, match="needs maps in m/s"):
        submission.write_submission("kaggle-gwi", tmp_path / "s.csv", maps(small_ss, ["a"]), small_ss)
    with pytest.raises(DataError, match="needs maps in km/s"):
        submission.write_submission("speed-structure", tmp_path / "s.npz", maps(small_gwi, ["a"]), small_gwi)
    assert not list(tmp_path.iterdir())
    with pytest.raises(DataError, match="unknown submission format"):
        submission.write_submission("csv", tmp_path / "s.csv", {}, small_gwi)


def test_store_mapping_reads_a_prediction_directory(tmp_path, small_ss):
    store = PredictionStore(tmp_path / "pred", small_ss)
    preds = maps(small_ss, ["p", "q"])
    for key, value in preds.items():
        store.write(key, value)
    mapping = submission.StoreMapping(store)
    assert sorted(mapping) == ["p", "q"] and len(mapping) == 2
    path = submission.write_speed_structure(tmp_path / "s.npz", mapping, small_ss, ["p", "q"])
    np.testing.assert_allclose(submission.read_speed_structure(path, small_ss)["q"], preds["q"])


def test_full_size_speed_structure_submission_from_a_store(tmp_path):
    store = PredictionStore(tmp_path / "pred", SPEED_STRUCTURE)
    for sid in ("000a", "000b"):
        store.write(sid, np.full(SPEED_STRUCTURE.velocity_shape, 2.5, np.float32))
    path = submission.write_submission(
        "speed-structure", tmp_path / "sub.npz", submission.StoreMapping(store), SPEED_STRUCTURE,
        ["000a", "000b"],
    )
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["000a", "000b"]
        assert npz["000a"].shape == (300, 1259) and npz["000a"].dtype == np.float64


def test_write_submission_accepts_a_reduced_grid_with_the_format_conventions(tmp_path, small_ss, small_gwi):
    """Reduced surveys (tests, rehearsals) write their own grid; the note says it will not score."""
    preds = maps(small_ss, ["a"])
    submission.write_submission("speed-structure", tmp_path / "s.npz", preds, small_ss, ["a"])
    with np.load(tmp_path / "s.npz") as npz:
        assert npz["a"].shape == (small_ss.nx, small_ss.nz) and npz["a"].dtype == np.float64
    submission.write_submission("kaggle-gwi", tmp_path / "s.csv", maps(small_gwi, ["a"]), small_gwi)
    assert read_kaggle_gwi_shape(tmp_path / "s.csv") == (small_gwi.nz, small_gwi.nx // 2)
    assert "will not score" in submission.challenge_grid_note("speed-structure", small_ss)
    assert submission.challenge_grid_note("speed-structure", SPEED_STRUCTURE) is None
    assert submission.challenge_grid_note("kaggle-gwi", OPENFWI) is None


def read_kaggle_gwi_shape(path):
    (values,) = submission.read_kaggle_gwi(path).values()
    return values.shape
