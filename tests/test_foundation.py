from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from seisinv.errors import DataError
from seisinv.inference.store import PredictionStore
from seisinv.io import load_npy, save_npy
from seisinv.survey import OPENFWI


def test_atomic_save_leaves_no_temporary_files(tmp_path):
    save_npy(tmp_path / "a.npy", np.arange(5))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]
    np.testing.assert_array_equal(load_npy(tmp_path / "a.npy"), np.arange(5))


def test_truncated_npy_is_a_data_error(tmp_path):
    save_npy(tmp_path / "a.npy", np.zeros((100, 100), np.float32))
    raw = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "a.npy").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="a.npy"):
        load_npy(tmp_path / "a.npy")


def test_prediction_store_round_trip_and_shape_check(tmp_path):
    store = PredictionStore(tmp_path / "pred", survey=OPENFWI, source="test")
    v = np.full(OPENFWI.velocity_shape, 2000.0, np.float32)
    store.write("s1", v)
    again = PredictionStore(tmp_path / "pred")
    assert again.ids() == ["s1"] and again.survey.name == "openfwi"
    np.testing.assert_array_equal(again.read("s1"), v)
    with pytest.raises(DataError, match="expected"):
        store.write("bad", np.zeros((3, 3)))


def test_cli_reports_errors_in_one_line():
    proc = subprocess.run(
        [sys.executable, "-m", "seisinv.cli.main", "surveys", "--show", "nope"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1
    assert "unknown survey" in proc.stderr and "Traceback" not in proc.stderr


def test_atomic_files_get_umask_permissions(tmp_path):
    import os

    save_npy(tmp_path / "a.npy", np.arange(3))
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.npy").stat().st_mode & 0o777 == 0o666 & ~umask
