"""Validation: every kind of damage on small corrupted fixtures, found in one pass by
``check_dataset`` / ``seisinv check`` and refused by the readers with a DataError naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from seisinv.cli.main import app
from seisinv.data import open_dataset
from seisinv.data.check import check_dataset
from seisinv.data.writers import write_sample_folder, write_stacked
from seisinv.errors import DataError
from seisinv.io import save_npy, write_yaml
from seisinv.survey import OPENFWI, SPEED_STRUCTURE

SS = SPEED_STRUCTURE.replace(name="small-ss", nz=40, nx=12, nt=50, source_x=(0.0, 5.0, 11.0),
                             receiver_x=(0.0, 5.0, 10.0, 11.0), shot_names=("1", "6", "12"))
FWI = OPENFWI.replace(name="small-fwi", nz=8, nx=10, nt=30, source_x=(0.0, 90.0),
                      receiver_x=tuple(10.0 * i for i in range(10)))


def velocity(survey, n=None):
    v = np.linspace(survey.vmin, survey.vmax, survey.nz, dtype=np.float32)[:, None]
    v = np.repeat(v, survey.nx, axis=1)
    return v if n is None else np.repeat(v[None], n, axis=0)


def gathers(survey, n=None):
    shape = survey.gather_shape if n is None else (n, *survey.gather_shape)
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def truncate(path, keep_bytes=-40):
    data = path.read_bytes()
    path.write_bytes(data[:keep_bytes])


@pytest.fixture
def broken_ss(tmp_path):
    """A Speed & Structure root with one problem per sample folder (plus a clean one)."""
    root = tmp_path / "ss"
    write_sample_folder(root, "good", gathers(SS), velocity(SS), SS)
    (write_sample_folder(root, "missing", gathers(SS), velocity(SS), SS)
     / "receiver_data_src_6.npy").unlink()
    save_npy(write_sample_folder(root, "extra", gathers(SS), velocity(SS), SS)
             / "receiver_data_src_7.npy", gathers(SS)[0])
    save_npy(write_sample_folder(root, "shape", gathers(SS), velocity(SS), SS)
             / "receiver_data_src_1.npy", np.zeros((50, 5), np.float32))
    save_npy(write_sample_folder(root, "dtype", gathers(SS), velocity(SS), SS)
             / "receiver_data_src_12.npy", np.zeros((50, 4), np.float64))
    nan = gathers(SS)
    nan[1, 3, 2] = np.nan
    write_sample_folder(root, "nan", nan, velocity(SS), SS)
    write_sample_folder(root, "mps", gathers(SS), velocity(SS) * 1000, SS)
    high = velocity(SS)
    high[-1] = 9.0
    write_sample_folder(root, "range", gathers(SS), high, SS)
    truncate(write_sample_folder(root, "truncated", gathers(SS), velocity(SS), SS)
             / "vp_model.npy")
    return root


@pytest.fixture
def broken_fwi(tmp_path):
    """OpenFWI roots: mismatched counts, km/s velocities, an orphan model, a duplicate id."""
    a, b = tmp_path / "fwi_a", tmp_path / "fwi_b"
    write_stacked(a / "data" / "data1.npy", gathers(FWI, 3), velocity(FWI, 3), FWI)
    save_npy(a / "model" / "model1.npy", velocity(FWI, 2)[:, None])  # 3 gathers, 2 maps
    write_stacked(a / "seis2.npy", gathers(FWI, 2), velocity(FWI, 2) / 1000, FWI)  # km/s
    save_npy(a / "model7.npy", velocity(FWI, 1)[:, None])  # no data7.npy
    write_stacked(b / "seis2.npy", gathers(FWI, 1), velocity(FWI, 1), FWI)  # id seis2_0 again
    return a, b


def messages(report):
    return [str(p) for p in report.problems]


def test_check_lists_every_speed_structure_problem_in_one_pass(broken_ss):
    report = check_dataset(broken_ss, SS)
    assert not report.ok
    found = messages(report)
    expected = {
        "missing": "missing shot files receiver_data_src_6.npy",
        "extra": "unexpected files receiver_data_src_7.npy",
        "shape": "shape (50, 5), expected (50, 4)",
        "dtype": "dtype float64, expected float32",
        "nan": "1 NaN and 0 Inf",
        "mps": "looks like m/s",
        "range": "outside the survey's 1.5..4.5",
        "truncated": "truncated",
    }
    for folder, text in expected.items():
        assert any(f"/{folder}" in m and text in m for m in found), (folder, found)
    assert not any("/good" in m for m in found)
    assert report.counts()["missing files"] == 1 and report.counts()["truncated"] == 1
    assert len(found) == len(expected)


def test_check_lists_openfwi_problems(broken_fwi):
    report = check_dataset(list(broken_fwi), FWI)
    found = messages(report)
    assert any("data1.npy" in m and "holds 3 samples but model1.npy holds 2" in m for m in found)
    assert any("vel2.npy" in m and "looks like km/s" in m for m in found)
    assert any("model7.npy" in m and "without a matching gathers file" in m for m in found)
    assert any("duplicate sample id 'seis2_0'" in m for m in found)
    assert set(report.counts()) == {"sample counts", "units", "unpaired files", "duplicate ids"}


def test_cli_check_exits_non_zero_and_lists_all(broken_ss):
    result = CliRunner().invoke(app, ["check", str(broken_ss), "--survey", "speed-structure"],
                                terminal_width=400)
    assert result.exit_code == 1
    # Against the full-size preset (shots 1, 75, ...) every folder misses shots and has extras.
    assert "18 problem(s) found" in result.output
    result = CliRunner().invoke(app, ["check", str(broken_ss), "--survey", _yaml(broken_ss)],
                                terminal_width=400)
    assert result.exit_code == 1, result.output
    for text in ("missing files", "extra files", "dtype", "NaN/Inf", "units", "value range",
                 "truncated", "8 problem(s) found"):
        assert text in result.output


def test_cli_check_passes_a_clean_dataset(tmp_path):
    write_sample_folder(tmp_path, "a", gathers(SS), velocity(SS), SS)
    result = CliRunner().invoke(app, ["check", str(tmp_path), "--survey", _yaml(tmp_path)],
                                terminal_width=400)
    assert result.exit_code == 0, result.output
    assert "no problems found" in result.output


def _yaml(folder):
    path = folder.parent / f"{folder.name}-survey.yaml"
    write_yaml(path, SS.to_dict())
    return str(path)


def test_readers_refuse_each_problem_naming_the_file(broken_ss, broken_fwi):
    # Opening checks the structure (both problems in one error); reading checks each file.
    with pytest.raises(DataError, match=r"extra: unexpected files.*missing: missing shot files"):
        open_dataset(broken_ss, SS)
    for folder, pattern in [("shape", r"receiver_data_src_1.npy: shot shape \(50, 5\)"),
                            ("dtype", r"receiver_data_src_12.npy: dtype float64"),
                            ("nan", r"receiver_data_src_6.npy: gathers contain 1 NaN"),
                            ("mps", r"vp_model.npy: velocity looks like m/s"),
                            ("range", r"vp_model.npy: velocity range"),
                            ("truncated", r"vp_model.npy")]:
        source = open_dataset(broken_ss / folder, SS)
        with pytest.raises(DataError, match=pattern):
            source[0]
    with pytest.raises(DataError, match="holds 3 samples but model1.npy holds 2"):
        open_dataset(broken_fwi[0] / "data", FWI)
    with pytest.raises(DataError, match="truncated"):
        path = broken_fwi[1] / "seis2.npy"
        truncate(path)
        open_dataset(broken_fwi[1], FWI)


def test_check_reads_a_bounded_number_of_stacked_samples(tmp_path):
    g = gathers(FWI, 40)
    g[39, 0, 0, 0] = np.inf  # in a sample the bounded check skips...
    g[0, 0, 0, 0] = np.nan  # ...and one it always reads (the first)
    write_stacked(tmp_path / "data1.npy", g, velocity(FWI, 40), FWI)
    report = check_dataset(tmp_path, FWI, value_samples=3)
    assert report.roots[0].value_checked == 3
    assert any("sample 0" in m and "NaN" in m for m in messages(report))
    full = check_dataset(tmp_path, FWI, value_samples=40)
    assert any("sample 39" in m and "Inf" in m for m in messages(full))


def test_slight_range_excursions_are_reported_but_readable(tmp_path):
    v = velocity(SS)
    v[-1] = 5.0  # 0.5 km/s above vmax: beyond check's 10 % slack, within the readers' 50 %
    write_sample_folder(tmp_path, "a", gathers(SS), v, SS)
    assert check_dataset(tmp_path, SS).counts() == {"value range": 1}
    assert open_dataset(tmp_path, SS)[0].velocity.max() == pytest.approx(5.0)
