"""Issue 14 on the data side: the Kaggle training layout, the one velocity check on Survey,
text files renamed .npy."""

from __future__ import annotations

import re

import numpy as np
import pytest

from seisinv.data import open_dataset
from seisinv.data.check import check_dataset
from seisinv.data.writers import write_stacked
from seisinv.errors import DataError
from seisinv.generation import VelocityMaps
from seisinv.inference.submission import check_velocity as submission_problems
from seisinv.io import load_npy, save_npy
from seisinv.survey import OPENFWI, SPEED_STRUCTURE, VELOCITY_SLACK

FWI = OPENFWI.replace(name="small-fwi", nz=8, nx=10, nt=30, source_x=(0.0, 90.0),
                      receiver_x=tuple(10.0 * i for i in range(10)))


def _maps(n, value=2500.0):
    return np.full((n, FWI.nz, FWI.nx), value, np.float32)


def _gathers(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, *FWI.gather_shape)).astype(np.float32)


def test_kaggle_training_layout_opens_with_unique_family_ids(tmp_path):
    """The ten family folders side by side, both file-name styles, A and B kept apart."""
    for family in ("FlatVel_A", "FlatVel_B"):
        write_stacked(tmp_path / family / "data" / "data1.npy", _gathers(2), _maps(2), FWI)
    for family in ("FlatFault_A", "FlatFault_B"):
        write_stacked(tmp_path / family / "seis2_1_0.npy", _gathers(1), _maps(1), FWI)
    source = open_dataset(tmp_path, FWI, require_velocity=True)
    assert source.ids == ["FlatFault_A-seis2_1_0_0", "FlatFault_B-seis2_1_0_0",
                          "FlatVel_A-data1_0", "FlatVel_A-data1_1",
                          "FlatVel_B-data1_0", "FlatVel_B-data1_1"]
    assert source.families == ["FlatFault_A", "FlatFault_B", "FlatVel_A", "FlatVel_A",
                               "FlatVel_B", "FlatVel_B"]
    assert all("/" not in i and "\\" not in i for i in source.ids)
    # The same family folder opened on its own keeps the same ids.
    assert open_dataset(tmp_path / "FlatVel_B", FWI).ids == ["FlatVel_B-data1_0",
                                                            "FlatVel_B-data1_1"]
    assert check_dataset([tmp_path], FWI).problems == []


def test_kaggle_test_set_ids_are_file_stems(tmp_path):
    for name in ("000030dca2", "0001026c8a"):
        save_npy(tmp_path / "test" / f"{name}.npy", _gathers(1)[0])
    assert open_dataset(tmp_path / "test", FWI).ids == ["000030dca2", "0001026c8a"]


def test_same_file_names_in_plain_subfolders_get_folder_ids(tmp_path):
    write_stacked(tmp_path / "a" / "data1.npy", _gathers(1), _maps(1), FWI)
    write_stacked(tmp_path / "b" / "data1.npy", _gathers(1), _maps(1), FWI)
    assert open_dataset(tmp_path, FWI).ids == ["a-data1_0", "b-data1_0"]


@pytest.mark.parametrize("factor, text", [(100.0, "times the survey.s: wrong scale"), (1e-3, "looks like km/s")])
def test_one_velocity_check_for_reader_simulate_and_submission(tmp_path, factor, text):
    """A map 100x too large (or in km/s) is refused by simulate and the reader alike, naming
    the file; the submission check says the same."""
    bad = _maps(2) * factor
    write_stacked(tmp_path / "d" / "data1.npy", _gathers(2), bad, FWI)
    model = tmp_path / "d" / "model1.npy"
    with pytest.raises(DataError, match=rf"model1\.npy.*{text}"):
        VelocityMaps(model, FWI).check_all()
    source = open_dataset(tmp_path / "d", FWI)
    with pytest.raises(DataError, match=rf"model1\.npy.*{text}"):
        source[0]
    assert any(re.search(text, p) for p in submission_problems("x", bad[0], FWI))


def test_reader_and_simulate_agree_at_the_edge_of_the_accepted_range(tmp_path):
    """Four heuristics used to disagree; now one slack decides for both."""
    span = FWI.vmax - FWI.vmin
    inside = _maps(1, FWI.vmax + 0.9 * VELOCITY_SLACK * span)
    outside = _maps(1, FWI.vmax + 1.1 * VELOCITY_SLACK * span)
    for maps, ok in ((inside, True), (outside, False)):
        write_stacked(tmp_path / "e" / "data1.npy", _gathers(1), maps, FWI)
        verdicts = []
        for check in (lambda: VelocityMaps(tmp_path / "e" / "model1.npy", FWI).check_all(),
                      lambda: open_dataset(tmp_path / "e", FWI)[0]):
            try:
                check()
                verdicts.append(True)
            except DataError:
                verdicts.append(False)
        assert verdicts == [ok, ok]


def test_survey_check_velocity_names_where_and_units():
    with pytest.raises(DataError, match=r"^vp\.npy: velocity looks like m/s"):
        SPEED_STRUCTURE.check_velocity(np.full((4, 4), 3000.0), "vp.npy")
    with pytest.raises(DataError, match="NaN/Inf"):
        OPENFWI.check_velocity(np.array([np.nan, 2000.0]), "v")
    with pytest.raises(DataError, match="positive"):
        OPENFWI.check_velocity(np.array([-1.0, 2000.0]), "v")
    OPENFWI.check_velocity(np.full((3, 3), 2000.0), "v")


def test_text_file_renamed_npy_is_named_as_such(tmp_path):
    path = tmp_path / "x.npy"
    path.write_text("id,value\n1,2\n")
    with pytest.raises(DataError, match="not a .npy file.*renamed") as info:
        load_npy(path)
    assert "pickle" not in str(info.value)
    with pytest.raises(DataError, match="not a .npy file"):
        open_dataset(tmp_path, FWI)
    with pytest.raises(DataError, match="not a .npy file"):
        VelocityMaps(path, FWI)
