"""Round trips through every reader layout, with tiny fixtures written in tmp_path."""

from __future__ import annotations

import numpy as np
import pytest

from seisinv.data import open_dataset
from seisinv.data.writers import write_sample_folder, write_stacked
from seisinv.errors import DataError
from seisinv.io import save_npy, write_text, write_yaml
from seisinv.survey import OPENFWI, SPEED_STRUCTURE


@pytest.fixture
def small_ss():
    """A Speed & Structure-like survey (x-major on disk, km/s) small enough for tmp files."""
    return SPEED_STRUCTURE.replace(
        name="small-ss", nz=40, nx=12, nt=50, source_x=(0.0, 5.0, 11.0),
        receiver_x=(0.0, 5.0, 10.0, 11.0), shot_names=("1", "6", "12"))


@pytest.fixture
def small_fwi():
    """An OpenFWI-like survey (depth-major on disk, m/s)."""
    return OPENFWI.replace(name="small-fwi", nz=8, nx=10, nt=30, source_x=(0.0, 90.0),
                           receiver_x=tuple(10.0 * i for i in range(10)))


def depth_gradient(survey, n=None, rng=None):
    """(n, nz, nx) velocities increasing with depth (axis -2), plus a little lateral noise."""
    rng = rng or np.random.default_rng(0)
    z = np.linspace(survey.vmin, survey.vmax, survey.nz)[:, None]
    shape = (n or 1, survey.nz, survey.nx)
    v = (np.broadcast_to(z, shape) + rng.uniform(0, 0.01, shape) * (survey.vmax - survey.vmin))
    v = np.clip(v, survey.vmin, survey.vmax).astype(np.float32)
    return v if n else v[0]


def gathers(survey, n=None, seed=0):
    shape = survey.gather_shape if n is None else (n, *survey.gather_shape)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_speed_structure_round_trip_keeps_depth_first(tmp_path, small_ss):
    velocity = depth_gradient(small_ss)
    g = gathers(small_ss)
    folder = write_sample_folder(tmp_path, "abc", g, velocity, small_ss)
    write_sample_folder(tmp_path, "test1", gathers(small_ss, seed=1), None, small_ss)
    # On disk the map is (nx, nz) float64, as the challenge ships it.
    disk = np.load(folder / "vp_model.npy")
    assert disk.shape == (small_ss.nx, small_ss.nz) and disk.dtype == np.float64

    source = open_dataset(tmp_path, small_ss)
    assert source.ids == ["abc", "test1"]
    assert source.velocity_known == [True, False] and not source.has_velocity
    sample = source[0]
    assert sample.gathers.shape == small_ss.gather_shape and sample.gathers.dtype == np.float32
    np.testing.assert_array_equal(sample.gathers, g)
    assert sample.velocity.shape == (small_ss.nz, small_ss.nx)
    assert sample.velocity.dtype == np.float32
    np.testing.assert_allclose(sample.velocity, velocity, rtol=1e-6)
    # Depth is axis 0: velocity grows down every column.
    assert (np.diff(sample.velocity.mean(axis=1)) > 0).all()
    assert sample.family is None and not sample.synthetic and sample.survey == "small-ss"
    assert source[1].velocity is None
    with pytest.raises(DataError, match="no velocity"):
        open_dataset(tmp_path, small_ss, require_velocity=True)


def test_single_sample_folder_is_a_dataset(tmp_path, small_ss):
    folder = write_sample_folder(tmp_path, "only", gathers(small_ss), depth_gradient(small_ss),
                                 small_ss)
    assert open_dataset(folder, small_ss).ids == ["only"]


def test_openfwi_data_model_folders_and_family(tmp_path, small_fwi):
    velocities = depth_gradient(small_fwi, n=3)
    g = gathers(small_fwi, n=3)
    write_stacked(tmp_path / "FlatVel_A" / "data" / "data1.npy", g, velocities, small_fwi)
    write_stacked(tmp_path / "CurveFault_B" / "seis2_1_0.npy", g[:2], velocities[:2], small_fwi)
    write_stacked(tmp_path / "Style_A" / "data3.npy", g[:1], velocities[:1], small_fwi)
    assert (tmp_path / "FlatVel_A" / "model" / "model1.npy").exists()
    assert (tmp_path / "CurveFault_B" / "vel2_1_0.npy").exists()

    source = open_dataset(tmp_path, small_fwi, require_velocity=True)
    assert source.ids == ["CurveFault_B-seis2_1_0_0", "CurveFault_B-seis2_1_0_1",
                          "FlatVel_A-data1_0", "FlatVel_A-data1_1", "FlatVel_A-data1_2",
                          "Style_A-data3_0"]
    assert source.families == ["CurveFault_B"] * 2 + ["FlatVel_A"] * 3 + ["Style_A"]
    sample = source[source.index_of("FlatVel_A-data1_2")]
    np.testing.assert_array_equal(sample.gathers, g[2])
    np.testing.assert_array_equal(sample.velocity, velocities[2])
    assert sample.family == "FlatVel_A"


def test_openfwi_reader_memory_maps(tmp_path, small_fwi, monkeypatch):
    write_stacked(tmp_path / "data1.npy", gathers(small_fwi, n=4), depth_gradient(small_fwi, 4),
                  small_fwi)
    modes = []
    real_load = np.load

    def spy(path, *args, **kwargs):
        modes.append(kwargs.get("mmap_mode"))
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    source = open_dataset(tmp_path, small_fwi)
    source[3]
    source[1]
    assert modes == ["r", "r"]  # the data and the model file, each mapped once


def test_kaggle_test_files(tmp_path, small_fwi):
    for name in ("000039dca2", "ffee"):
        save_npy(tmp_path / f"{name}.npy", gathers(small_fwi))
    source = open_dataset(tmp_path, small_fwi)
    assert source.ids == ["000039dca2", "ffee"]
    assert source[0].velocity is None and source[0].gathers.shape == small_fwi.gather_shape


def test_real_kaggle_sample(shared_data):
    source = open_dataset(shared_data / "gwi_test_000039dca2.npy", OPENFWI)
    sample = source[0]
    assert sample.id == "gwi_test_000039dca2"
    assert sample.gathers.shape == (5, 1000, 70) and sample.velocity is None


def test_generate_layout_openfwi_written_by_hand(tmp_path, small_fwi):
    velocities = depth_gradient(small_fwi, n=3)
    g = gathers(small_fwi, n=3)
    write_yaml(tmp_path / "survey.yaml", small_fwi.to_dict())
    save_npy(tmp_path / "data" / "data0.npy", g[:2])
    save_npy(tmp_path / "model" / "model0.npy", velocities[:2, None])
    save_npy(tmp_path / "data" / "data1.npy", g[2:])
    save_npy(tmp_path / "model" / "model1.npy", velocities[2:, None])
    write_text(tmp_path / "manifest.csv",
               "id,family,seed,file,index,survey,seisinv_version\n"
               "flat-000000,flat,11,data/data0.npy,0,small-fwi,0.1.0\n"
               "flat-000001,flat,12,data/data0.npy,1,small-fwi,0.1.0\n"
               "salt-000000,salt,13,data/data1.npy,0,small-fwi,0.1.0\n")
    source = open_dataset(tmp_path, small_fwi, require_velocity=True)
    assert source.ids == ["flat-000000", "flat-000001", "salt-000000"]
    assert source.synthetic == [True] * 3
    sample = source[2]
    assert sample.family == "salt" and sample.synthetic
    np.testing.assert_array_equal(sample.gathers, g[2])
    np.testing.assert_array_equal(sample.velocity, velocities[2])


def test_generate_layout_speed_structure_written_by_hand(tmp_path, small_ss):
    velocity = depth_gradient(small_ss)
    g = gathers(small_ss)
    write_yaml(tmp_path / "survey.yaml", small_ss.to_dict())
    folder = tmp_path / "layered-000007"
    for shot, name in enumerate(small_ss.shot_names):
        save_npy(folder / f"receiver_data_src_{name}.npy", g[shot])
    save_npy(folder / "vp_model.npy", small_ss.velocity_to_disk(velocity).astype(np.float64))
    write_text(tmp_path / "manifest.csv",
               "id,family,seed,file,index,survey,seisinv_version\n"
               "layered-000007,layered,7,layered-000007,0,small-ss,0.1.0\n")
    source = open_dataset(tmp_path, small_ss)
    sample = source[0]
    assert sample.id == "layered-000007" and sample.synthetic and sample.family == "layered"
    np.testing.assert_allclose(sample.velocity, velocity, rtol=1e-6)
    assert (np.diff(sample.velocity.mean(axis=1)) > 0).all()


def test_generate_layout_for_another_survey_is_refused(tmp_path, small_fwi):
    write_yaml(tmp_path / "survey.yaml", small_fwi.replace(nt=31).to_dict())
    write_text(tmp_path / "manifest.csv", "id,family,seed,file,index,survey,seisinv_version\n")
    with pytest.raises(DataError, match="gather_shape"):
        open_dataset(tmp_path, small_fwi)


def test_several_roots_combine_and_duplicates_are_refused(tmp_path, small_fwi):
    write_stacked(tmp_path / "a" / "data1.npy", gathers(small_fwi, n=2),
                  depth_gradient(small_fwi, 2), small_fwi)
    write_stacked(tmp_path / "b" / "data2.npy", gathers(small_fwi, n=1),
                  depth_gradient(small_fwi, 1), small_fwi)
    source = open_dataset([tmp_path / "a", tmp_path / "b"], small_fwi)
    assert source.ids == ["data1_0", "data1_1", "data2_0"]
    write_stacked(tmp_path / "c" / "data1.npy", gathers(small_fwi, n=1),
                  depth_gradient(small_fwi, 1), small_fwi)
    with pytest.raises(DataError, match="duplicate sample id 'data1_0'"):
        open_dataset([tmp_path / "a", tmp_path / "c"], small_fwi)


def test_reader_refuses_wrong_units_on_read(tmp_path, small_ss):
    write_sample_folder(tmp_path, "mps", gathers(small_ss), depth_gradient(small_ss) * 1000,
                        small_ss)
    source = open_dataset(tmp_path, small_ss)
    with pytest.raises(DataError, match=r"vp_model.npy: velocity looks like m/s"):
        source[0]


def test_source_pickles_without_its_memory_maps(tmp_path, small_fwi):
    import pickle

    write_stacked(tmp_path / "data1.npy", gathers(small_fwi, n=2), depth_gradient(small_fwi, 2),
                  small_fwi)
    source = open_dataset(tmp_path, small_fwi)
    source[0]
    copy = pickle.loads(pickle.dumps(source))
    np.testing.assert_array_equal(copy[1].gathers, source[1].gathers)


def test_survey_is_guessed_when_not_given(tmp_path, small_ss, small_fwi):
    generated = tmp_path / "generated"
    write_yaml(generated / "survey.yaml", small_fwi.to_dict())
    save_npy(generated / "data" / "data0.npy", gathers(small_fwi, n=1))
    write_text(generated / "manifest.csv", "id,family,seed,file,index,survey,seisinv_version\n"
                                           "x-0,flat,1,data/data0.npy,0,small-fwi,0.1.0\n")
    source = open_dataset(generated)
    assert source.survey == small_fwi and source.ids == ["x-0"]
    # Per-sample folders default to the Speed & Structure preset: a small fixture then fails
    # with a message naming the preset's shot files.
    write_sample_folder(tmp_path / "ss", "a", gathers(small_ss), None, small_ss)
    with pytest.raises(DataError, match="receiver_data_src_75.npy"):
        open_dataset(tmp_path / "ss")


@pytest.mark.parametrize("layout", ["openfwi", "speed-structure"])
def test_reads_what_seisinv_generate_writes(tmp_path, layout):
    """Contract with the generation layer: its real output reads back, flat layers stay rows."""
    pytest.importorskip("deepwave")
    from seisinv.data.check import check_dataset
    from seisinv.generation.job import GenerateSpec, run_generate

    base = OPENFWI if layout == "openfwi" else SPEED_STRUCTURE
    survey = base.replace(name=f"tiny-{layout}", nz=24, nx=20, dz=10.0, dx=10.0, nt=120,
                          dt=0.001, source_x=(0.0, 190.0), source_z=10.0,
                          receiver_x=(0.0, 100.0, 190.0), receiver_z=10.0,
                          shot_names=None if layout == "openfwi" else ("1", "20"))
    run_generate(GenerateSpec(survey=survey, families=("flat",), n=3, seed=4, per_file=2),
                 tmp_path, device="cpu", progress=False)
    source = open_dataset(tmp_path, require_velocity=True)  # survey from its survey.yaml
    assert source.survey == survey and len(source) == 3
    assert source.synthetic == [True] * 3 and source.families == ["flat"] * 3
    sample = source[2]
    assert sample.gathers.shape == survey.gather_shape
    # "flat" maps are horizontal layers: constant along x (axis 1), varying with depth (axis 0).
    assert np.allclose(sample.velocity, sample.velocity[:, :1])
    assert np.ptp(sample.velocity[:, 0]) > 0
    assert check_dataset(tmp_path, survey).ok


def test_memory_maps_are_bounded(tmp_path, small_fwi, monkeypatch):
    import seisinv.data.readers as readers

    monkeypatch.setattr(readers, "MAX_OPEN_MAPS", 3)
    for k in range(4):
        write_stacked(tmp_path / f"data{k}.npy", gathers(small_fwi, n=1, seed=k),
                      depth_gradient(small_fwi, 1), small_fwi)
    source = open_dataset(tmp_path, small_fwi)
    for i in range(len(source)):
        np.testing.assert_array_equal(source[i].gathers, gathers(small_fwi, n=1, seed=i)[0])
    assert len(source._maps) == 3
    np.testing.assert_array_equal(source[0].gathers, gathers(small_fwi, n=1, seed=0)[0])


def test_folders_read_with_another_survey_name_that_survey(tmp_path, small_ss, small_fwi):
    """S&S folders under an OpenFWI-layout survey (shots 1, 2): the error names the survey used."""
    write_sample_folder(tmp_path, "abc", gathers(small_ss), None, small_ss)
    with pytest.raises(DataError, match="survey 'small-fwi' expects one per shot: 1, 2"):
        open_dataset(tmp_path, small_fwi)
