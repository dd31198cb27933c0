from __future__ import annotations

import numpy as np
import pytest

from seisinv.errors import ConfigError
from seisinv.survey import OPENFWI, SPEED_STRUCTURE, load_survey, survey_from_dict


def test_openfwi_preset_geometry():
    assert OPENFWI.gather_shape == (5, 1000, 70)
    assert OPENFWI.velocity_shape == (70, 70)
    np.testing.assert_array_equal(OPENFWI.source_cells[:, 1], [0, 17, 34, 52, 69])
    assert set(OPENFWI.source_cells[:, 0]) == {1}
    np.testing.assert_array_equal(OPENFWI.receiver_cells[:, 1], np.arange(70))


def test_speed_structure_preset_layout():
    s = SPEED_STRUCTURE
    assert s.gather_shape == (5, 10001, 31)
    assert s.disk_velocity_shape == (300, 1259)
    assert s.velocity_shape == (1259, 300)
    np.testing.assert_array_equal(s.source_cells[:, 1], [0, 74, 149, 224, 299])
    # receiver at x = 300 m lies one cell past the 0..299 m grid and snaps to the last cell
    assert s.receiver_cells[-1, 1] == 299
    disk = np.zeros(s.disk_velocity_shape)
    assert s.velocity_from_disk(disk).shape == (1259, 300)
    assert s.duration == pytest.approx(1.0)


def test_yaml_survey_with_base(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("base: openfwi\nname: mine\nnt: 500\nsimulation: {accuracy: 8}\n")
    s = load_survey(path)
    assert s.nt == 500 and s.nx == 70 and s.simulation.accuracy == 8
    assert s.simulation.boundary_width == OPENFWI.simulation.boundary_width


def test_invalid_survey_names_the_field():
    with pytest.raises(ConfigError, match="vmin"):
        survey_from_dict({"base": "openfwi", "name": "x", "vmin": 5000.0})
    with pytest.raises(ConfigError, match="nonsense"):
        survey_from_dict({"base": "openfwi", "name": "x", "nonsense": 1})
    with pytest.raises(ConfigError, match="unknown survey"):
        load_survey("no-such-survey")


def test_bundled_marmousi_survey_loads():
    from importlib import resources

    path = resources.files("seisinv") / "surveys" / "marmousi-small.yaml"
    s = load_survey(str(path))
    assert s.units == "km/s" and s.nx == 201
