"""`seisinv generate` / `seisinv simulate`: layout, manifest, read-back, resume, shards, errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from seisinv.errors import DataError, SeisinvError
from seisinv.generation import GenerateSpec, Shard, VelocityMaps, run_generate, run_simulate
from seisinv.generation import job as job_module
from seisinv.geology import generate_velocity, resolve_family, sample_seed, velocity_sample
from seisinv.physics import simulate


@pytest.fixture
def small(tiny_survey):
    """24 x 24 OpenFWI-like survey with 100 time samples, 3 shots, 8 receivers."""
    return tiny_survey.replace(
        name="small", nz=24, nx=24, nt=100, source_x=(0.0, 110.0, 230.0),
        receiver_x=tuple(30.0 * i for i in range(8)),
    )


@pytest.fixture
def small_ss(small):
    """The same grid in the Speed & Structure conventions: km/s, (x, z) on disk, folders."""
    return small.replace(
        name="small-ss", units="km/s", vmin=1.5, vmax=4.5, layout="speed-structure",
        velocity_axes="xz", shot_names=("1", "12", "24"),
    )


def _rows(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _expected(spec: GenerateSpec, index: int) -> tuple[str, np.ndarray]:
    seed = sample_seed(spec.seed, index)
    family = resolve_family(spec.families[index % len(spec.families)], seed)
    return family, velocity_sample(family, spec.survey, seed)


def _tmp_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.endswith(".tmp")]


# ---- layout and read-back -----------------------------------------------------------------
def test_openfwi_layout_and_read_back(tmp_path, small):
    spec = GenerateSpec(small, ("flat", "fault", "salt"), n=5, seed=4, per_file=2)
    report = run_generate(spec, tmp_path / "out", device="cpu", progress=False)
    out = tmp_path / "out"
    assert report.written == 5 and report.manifest_rows == 5
    assert yaml.safe_load((out / "survey.yaml").read_text()) == small.to_dict()
    assert sorted(p.name for p in (out / "data").iterdir()) == ["data0.npy", "data1.npy", "data2.npy"]
    rows = _rows(out)
    assert list(rows[0]) == ["id", "family", "seed", "file", "index", "survey", "seisinv_version"]
    assert [r["id"] for r in rows] == [f"gen-s4-{i:07d}" for i in range(5)]
    data2 = np.load(out / "data" / "data2.npy")
    model0 = np.load(out / "model" / "model0.npy")
    assert data2.shape == (1, 3, 100, 8) and data2.dtype == np.float32
    assert model0.shape == (2, 1, 24, 24) and model0.dtype == np.float32

    velocity = generate_velocity("flat", 1, small, seed=4)  # sample 0 is family flat
    assert rows[0]["family"] == "flat"
    np.testing.assert_array_equal(model0[0, 0], velocity[0])
    expected_maps = []
    for i, row in enumerate(rows):
        family, v = _expected(spec, i)
        assert row["family"] == family and int(row["seed"]) == sample_seed(4, i)
        assert row["file"] == f"data/data{i // 2}.npy" and int(row["index"]) == i % 2
        model = np.load(out / "model" / f"model{i // 2}.npy")[i % 2, 0]
        np.testing.assert_array_equal(model, v)
        expected_maps.append(v)
    gathers = simulate(np.stack(expected_maps), small, device="cpu").numpy()
    for i, row in enumerate(rows):
        got = np.load(out / row["file"])[int(row["index"])]
        np.testing.assert_allclose(got, gathers[i], rtol=1e-5, atol=1e-6 * np.abs(gathers).max())
    assert np.abs(gathers).max() > 0
    assert rows[1]["family"] in ("flatfault", "curvefault")
    assert not _tmp_files(out)


def test_speed_structure_layout_and_read_back(tmp_path, small_ss):
    spec = GenerateSpec(small_ss, ("curved",), n=3, seed=0, per_file=2)
    run_generate(spec, tmp_path / "ss", device="cpu", progress=False)
    out = tmp_path / "ss"
    rows = _rows(out)
    assert [r["file"] for r in rows] == [r["id"] for r in rows]
    maps = generate_velocity("curved", 3, small_ss, seed=0)
    gathers = simulate(maps, small_ss, device="cpu").numpy()
    for i, row in enumerate(rows):
        folder = out / row["id"]
        assert sorted(p.name for p in folder.iterdir()) == [
            "receiver_data_src_1.npy", "receiver_data_src_12.npy", "receiver_data_src_24.npy",
            "vp_model.npy",
        ]
        vp = np.load(folder / "vp_model.npy")
        assert vp.dtype == np.float64 and vp.shape == (24, 24)
        np.testing.assert_allclose(vp.T, maps[i])  # on disk (x, z): transpose back to (z, x)
        assert 1.5 <= vp.min() and vp.max() <= 4.5
        shot = np.load(folder / "receiver_data_src_12.npy")
        assert shot.shape == (100, 8) and shot.dtype == np.float32
        np.testing.assert_allclose(shot, gathers[i, 1], rtol=1e-5,
                                   atol=1e-6 * np.abs(gathers).max())


def test_speed_structure_vp_model_is_depth_second(tmp_path, small_ss):
    tall = small_ss.replace(nz=30, nx=20, source_x=(0.0, 100.0, 190.0),
                            receiver_x=tuple(20.0 * i for i in range(8)))
    run_generate(GenerateSpec(tall, ("flat",), n=1), tmp_path / "t", device="cpu",
                 progress=False)
    vp = np.load(tmp_path / "t" / "gen-s0-0000000" / "vp_model.npy")
    assert vp.shape == (20, 30)
    assert (vp == vp[:1, :]).all()  # flat layers: constant along x, which is axis 0 on disk


# ---- resume -----------------------------------------------------------------------------
class Interrupt(Exception):
    pass


def _fail_on_call(monkeypatch, call: int) -> None:
    """Make the physics raise on its ``call``-th use, as a kill would stop the job there."""
    real = job_module.simulate_batch
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise Interrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(job_module, "simulate_batch", flaky)


@pytest.mark.parametrize("batch,fail_call", [(None, 2), (1, 4)])
def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, small, monkeypatch,
                                                             batch, fail_call):
    # (None, 2): killed between chunks; (1, 4): killed inside chunk 1 after its first sample.
    spec = GenerateSpec(small, ("flat", "curved"), n=5, seed=2, per_file=2)
    run_generate(spec, tmp_path / "ref", device="cpu", progress=False, batch=batch)
    with monkeypatch.context() as patch:
        _fail_on_call(patch, fail_call)
        with pytest.raises(Interrupt):
            run_generate(spec, tmp_path / "run", device="cpu", progress=False, batch=batch)
    out = tmp_path / "run"
    assert [r["id"] for r in _rows(out)] == ["gen-s2-0000000", "gen-s2-0000001"]
    assert not (out / "data" / "data1.npy").exists()
    assert not _tmp_files(out)
    report = run_generate(spec, out, device="cpu", progress=False, batch=batch)
    assert report.skipped == 2 and report.written == 3
    rows = _rows(out)
    ids = [r["id"] for r in rows]
    assert ids == [f"gen-s2-{i:07d}" for i in range(5)]
    assert len(set(ids)) == 5
    assert rows == _rows(tmp_path / "ref")
    for name in ("data/data0.npy", "data/data1.npy", "data/data2.npy", "model/model2.npy"):
        np.testing.assert_array_equal(np.load(out / name), np.load(tmp_path / "ref" / name))


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path, small, small_ss):
    spec = GenerateSpec(small_ss, ("flat",), n=2, per_file=2)
    out = tmp_path / "ss"
    run_generate(spec, out, device="cpu", progress=False)
    # As if killed: chunk record gone, one folder half-built under its temporary name.
    (out / ".progress" / "chunk000000.csv").unlink()
    (out / ".gen-s0-0000001.abc.tmp").mkdir()
    (out / ".gen-s0-0000001.abc.tmp" / "receiver_data_src_1.npy").write_bytes(b"partial")
    report = run_generate(spec, out, device="cpu", progress=False)
    assert report.skipped == 2 and report.written == 0  # finished folders are kept
    assert not _tmp_files(out)
    assert [r["id"] for r in _rows(out)] == ["gen-s0-0000000", "gen-s0-0000001"]


def test_rerun_of_a_finished_run_does_nothing(tmp_path, small):
    spec = GenerateSpec(small, ("flat",), n=3, per_file=2)
    run_generate(spec, tmp_path / "o", device="cpu", progress=False)
    again = run_generate(spec, tmp_path / "o", device="cpu", progress=False)
    assert again.written == 0 and again.skipped == 3 and again.manifest_rows == 3


def test_rerun_with_other_arguments_is_refused(tmp_path, small):
    run_generate(GenerateSpec(small, ("flat",), n=2), tmp_path / "o", device="cpu",
                 progress=False)
    with pytest.raises(SeisinvError, match=r"different arguments: n=2 \(now 3\)"):
        run_generate(GenerateSpec(small, ("flat",), n=3), tmp_path / "o", device="cpu",
                     progress=False)
    with pytest.raises(SeisinvError, match="different survey"):
        run_generate(GenerateSpec(small.replace(nt=90), ("flat",), n=2), tmp_path / "o",
                     device="cpu", progress=False)


# ---- shards -----------------------------------------------------------------------------
@pytest.mark.parametrize("n_chunks,count,world", [(7, 3, 1), (10, 2, 2), (3, 4, 1), (1, 1, 1)])
def test_shards_partition_the_chunks(n_chunks, count, world):
    taken = [c for k in range(1, count + 1) for rank in range(world)
             for c in Shard(k, count).chunks(n_chunks, rank, world)]
    assert sorted(taken) == list(range(n_chunks))


def test_shards_into_one_folder_cover_every_id_once(tmp_path, small):
    spec = GenerateSpec(small, ("flat", "style"), n=5, seed=1, per_file=1)
    out = tmp_path / "o"
    counts = []
    for k in (1, 2, 3):
        report = run_generate(spec, out, device="cpu", shard=Shard.parse(f"{k}/3"),
                              progress=False)
        counts.append(report.written)
    assert counts == [2, 2, 1]
    ids = [r["id"] for r in _rows(out)]
    assert ids == [f"gen-s1-{i:07d}" for i in range(5)]


def test_torchrun_ranks_take_their_share(tmp_path, small, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    spec = GenerateSpec(small, ("flat",), n=4, per_file=1)
    report = run_generate(spec, tmp_path / "o", device="cpu", progress=False)
    assert report.chunks == [1, 3]
    assert [r["id"] for r in _rows(tmp_path / "o")] == ["gen-s0-0000001", "gen-s0-0000003"]


RANK_SCRIPT = """
import os, sys, time
from seisinv.generation import GenerateSpec, run_generate
from seisinv.survey import load_survey
spec = GenerateSpec(load_survey(sys.argv[1]), ("flat",), n=4, per_file=1)
if os.environ["RANK"] == "0":
    time.sleep(2)  # the worst case: the rank that clears arrives last
run_generate(spec, sys.argv[2], device="cpu", workers=0, overwrite=True, progress=False)
"""


def test_torchrun_overwrite_clears_once_before_any_rank_writes(tmp_path, small):
    """`torchrun --nproc_per_node 2 ... generate --overwrite` over an earlier run: rank 0 clears,
    the ranks meet at a barrier (gloo, CPU), then both write; the result equals one process's."""
    import os
    import socket
    import subprocess
    import sys

    from seisinv.io import write_yaml

    out, reference = tmp_path / "o", tmp_path / "ref"
    run_generate(GenerateSpec(small, ("flat",), n=4, per_file=1, seed=9), out, device="cpu",
                 progress=False)
    write_yaml(tmp_path / "small.yaml", small.to_dict())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    src = str(Path(__file__).resolve().parents[1] / "src")
    ranks = [subprocess.Popen(
        [sys.executable, "-c", RANK_SCRIPT, str(tmp_path / "small.yaml"), str(out)],
        env={**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
             "MASTER_PORT": str(port), "RANK": str(rank), "WORLD_SIZE": "2",
             "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": "2"},
        stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    for rank in ranks:
        _, err = rank.communicate(timeout=120)
        assert rank.returncode == 0, err
    run_generate(GenerateSpec(small, ("flat",), n=4, per_file=1), reference, device="cpu",
                 progress=False)
    for name in ("manifest.csv", *(f"{kind}/{kind}{c}.npy" for kind in ("data", "model")
                                   for c in range(4))):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in reference.iterdir())


# ---- mixing -----------------------------------------------------------------------------
def test_mix_from_existing_maps_stays_in_range(tmp_path, small):
    pool = generate_velocity("salt", 3, small, seed=0, vrange=(2000.0, 3500.0))
    np.save(tmp_path / "pool.npy", pool[:, None])  # (n, 1, nz, nx) as OpenFWI stores
    spec = GenerateSpec(small, ("mix",), n=3, per_file=3, mix_from=str(tmp_path / "pool.npy"))
    run_generate(spec, tmp_path / "o", device="cpu", progress=False)
    model = np.load(tmp_path / "o" / "model" / "model0.npy")
    assert model.min() >= 2000.0 - 1e-2 and model.max() <= 3500.0 + 1e-2
    assert {r["family"] for r in _rows(tmp_path / "o")} == {"mix"}


def test_mix_from_out_of_range_maps_is_an_error(tmp_path, small):
    np.save(tmp_path / "pool.npy", np.full((2, 24, 24), 6000.0, np.float32))
    spec = GenerateSpec(small, ("mix",), n=1, mix_from=str(tmp_path / "pool.npy"))
    with pytest.raises(SeisinvError, match="outside the velocity range"):
        run_generate(spec, tmp_path / "o", device="cpu", progress=False)


# ---- argument errors --------------------------------------------------------------------
@pytest.mark.parametrize("text", ["0/3", "4/3", "x", "1/0", "1-3"])
def test_bad_shard_is_an_error(text):
    with pytest.raises(SeisinvError, match="shard"):
        Shard.parse(text)


def test_bad_arguments_are_errors(tmp_path, small):
    with pytest.raises(SeisinvError, match="unknown velocity family 'granite'"):
        GenerateSpec(small, ("flat", "granite"), n=1)
    with pytest.raises(SeisinvError, match="outside survey"):
        GenerateSpec(small, ("flat",), n=1, vrange=(500.0, 2000.0))
    with pytest.raises(SeisinvError, match="mix_from"):
        GenerateSpec(small, ("flat",), n=1, mix_from="x.npy")
    with pytest.raises(SeisinvError, match="^n 0: must be at least 1"):
        GenerateSpec(small, ("flat",), n=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(SeisinvError, match="not a folder"):
        run_generate(GenerateSpec(small, ("flat",), n=1), tmp_path / "file", progress=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(SeisinvError, match="not empty"):
        run_generate(GenerateSpec(small, ("flat",), n=1), tmp_path / "busy", progress=False)


# ---- simulate ---------------------------------------------------------------------------
def test_simulate_npy_to_npy(tmp_path, small):
    maps = generate_velocity("curvefault", 3, small, seed=5)
    np.save(tmp_path / "maps.npy", maps[:, None])
    report = run_simulate(tmp_path / "maps.npy", small, tmp_path / "g.npy", device="cpu",
                          batch=2, progress=False)
    assert report.written == 3
    got = np.load(tmp_path / "g.npy")
    expected = simulate(maps, small, device="cpu").numpy()
    assert got.shape == (3, 3, 100, 8) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


def test_simulate_speed_structure_folders_in_place(tmp_path, small_ss):
    maps = generate_velocity("flat", 2, small_ss, seed=0)
    for i, v in enumerate(maps):
        (tmp_path / f"s{i}").mkdir()
        np.save(tmp_path / f"s{i}" / "vp_model.npy", small_ss.velocity_to_disk(v).astype(np.float64))
    report = run_simulate(tmp_path, small_ss, tmp_path, device="cpu", progress=False)
    assert report.written == 2
    shot = np.load(tmp_path / "s1" / "receiver_data_src_24.npy")
    expected = simulate(maps, small_ss, device="cpu").numpy()
    np.testing.assert_allclose(shot, expected[1, 2], rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    again = run_simulate(tmp_path, small_ss, tmp_path, device="cpu", progress=False)
    assert again.skipped == 2 and again.written == 0


def test_simulate_rejects_wrong_units_naming_the_file(tmp_path, small, small_ss):
    maps = generate_velocity("flat", 2, small, seed=0)
    np.save(tmp_path / "kms.npy", maps / 1000.0)
    with pytest.raises(DataError, match=r"kms\.npy.*looks like km/s"):
        run_simulate(tmp_path / "kms.npy", small, tmp_path / "g.npy", progress=False)
    (tmp_path / "s0").mkdir()
    np.save(tmp_path / "s0" / "vp_model.npy", maps[0].T.astype(np.float64))  # m/s given
    with pytest.raises(DataError, match=r"s0/vp_model\.npy.*looks like m/s"):
        run_simulate(tmp_path / "s0", small_ss, tmp_path / "o", progress=False)


def test_simulate_rejects_wrong_shape_and_output(tmp_path, small):
    np.save(tmp_path / "bad.npy", np.full((2, 20, 24), 2000.0, np.float32))
    with pytest.raises(DataError, match=r"bad\.npy: velocity shape \(2, 20, 24\)"):
        run_simulate(tmp_path / "bad.npy", small, tmp_path / "g.npy", progress=False)
    with pytest.raises(SeisinvError, match=r"\.npy"):
        run_simulate(tmp_path / "bad.npy", small, tmp_path / "g_dir", progress=False)


def test_velocity_maps_reads_an_openfwi_dataset_root(tmp_path, small):
    spec = GenerateSpec(small, ("flat",), n=3, per_file=2)
    run_generate(spec, tmp_path / "o", device="cpu", progress=False)
    maps = VelocityMaps(tmp_path / "o", small)
    assert maps.ids == ["model0_0", "model0_1", "model1_0"]
    np.testing.assert_array_equal(maps.batch(range(3)), generate_velocity("flat", 3, small, 0))


# ---- CLI --------------------------------------------------------------------------------
def test_cli_generate_simulate_and_preview(tmp_path, small):
    from seisinv.cli.main import app

    survey_file = tmp_path / "small.yaml"
    survey_file.write_text(yaml.safe_dump(small.to_dict()))
    runner = CliRunner()
    result = runner.invoke(app, [
        "generate", "--survey", str(survey_file), "--families", "flat,fault", "--n", "3",
        "--per-file", "2", "--out", str(tmp_path / "o"), "--device", "cpu", "--seed", "3",
    ])
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in _rows(tmp_path / "o")] == [f"gen-s3-{i:07d}" for i in range(3)]

    result = runner.invoke(app, [
        "simulate", str(tmp_path / "o" / "model" / "model0.npy"), "--survey", str(survey_file),
        "--out", str(tmp_path / "g.npy"), "--device", "cpu",
    ])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(tmp_path / "g.npy"),
                               np.load(tmp_path / "o" / "data" / "data0.npy"), rtol=1e-5,
                               atol=1e-6)

    result = runner.invoke(app, ["generate", "--preview", "salt", "--examples", "1",
                                 "--survey", str(survey_file), "--out", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p.png").stat().st_size > 1000


@pytest.mark.parametrize("args,message", [
    (["--families", "flat,granite"], "unknown velocity family 'granite'"),
    (["--shard", "5/4"], "--shard"),
    (["--vmin", "100"], "outside survey"),
])
def test_cli_bad_arguments_raise_one_seisinv_error(tmp_path, args, message):
    from seisinv.cli.main import app, flag_message

    result = CliRunner().invoke(app, ["generate", "--n", "1", "--out", str(tmp_path / "o"), *args])
    assert result.exit_code != 0
    assert isinstance(result.exception, SeisinvError)
    assert message in flag_message(result.exception)  # as `seisinv` prints it
    assert "\n" not in str(result.exception)


def test_generated_folder_reads_back_through_open_dataset(tmp_path, small):
    data = pytest.importorskip("seisinv.data")
    spec = GenerateSpec(small, ("flat", "mix"), n=3, per_file=2)
    run_generate(spec, tmp_path / "o", device="cpu", progress=False)
    source = data.open_dataset(tmp_path / "o", small)
    assert list(source.ids) == [f"gen-s0-{i:07d}" for i in range(3)]
    sample = source[1]
    assert sample.synthetic and sample.family == "mix"
    np.testing.assert_array_equal(sample.velocity, _expected(spec, 1)[1])
    np.testing.assert_array_equal(sample.gathers, np.load(tmp_path / "o/data/data0.npy")[1])


def test_first_run_killed_before_its_spec_was_written_can_restart(tmp_path, small):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "survey.yaml").write_text("partial: true\n")
    run_generate(GenerateSpec(small, ("flat",), n=1), tmp_path / "o", device="cpu",
                 progress=False)
    assert yaml.safe_load((tmp_path / "o" / "survey.yaml").read_text()) == small.to_dict()


def test_rate_text_reads_well_for_fast_and_slow_jobs():
    from seisinv.generation.common import rate_text

    assert rate_text(30, 2.0) == "15.00 samples/s"
    assert rate_text(2, 80.0) == "40.0 s/sample"
    assert rate_text(0, 1.0) == ""


def test_stale_stacked_temporaries_are_removed_and_chunk_redone(tmp_path, small):
    spec = GenerateSpec(small, ("flat",), n=4, per_file=2)
    out = tmp_path / "o"
    run_generate(spec, out, device="cpu", progress=False)
    reference = np.load(out / "data" / "data1.npy")
    # As if killed while writing chunk 1: its record and files gone, a temporary left behind.
    (out / ".progress" / "chunk000001.csv").unlink()
    (out / "data" / "data1.npy").unlink()
    (out / "data" / ".data1.npy.k1ll3d.tmp").write_bytes(b"half")
    rebuilt = run_generate(spec, out, device="cpu", progress=False)
    assert rebuilt.written == 2 and rebuilt.skipped == 2
    assert not _tmp_files(out)
    np.testing.assert_array_equal(np.load(out / "data" / "data1.npy"), reference)
    assert [r["id"] for r in _rows(out)] == [f"gen-s0-{i:07d}" for i in range(4)]


def test_unwritable_output_and_full_disk_are_clear_errors(tmp_path, small, monkeypatch):
    import errno
    import os

    spec = GenerateSpec(small, ("flat",), n=2, per_file=1)
    with monkeypatch.context() as patch:
        patch.setattr(os, "access", lambda *args, **kwargs: False)  # root ignores chmod
        with pytest.raises(SeisinvError, match="not writable"):
            run_generate(spec, tmp_path / "ro", device="cpu", progress=False)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(job_module, "record_chunk", full_disk)
        with pytest.raises(SeisinvError, match="disk full while writing .*full; 0 of 2 samples are complete and will "
                           "not be redone"):
            run_generate(spec, tmp_path / "full", device="cpu", progress=False)
    assert run_generate(spec, tmp_path / "full", device="cpu", progress=False).written == 2


def test_concurrent_shards_in_one_folder_leave_a_complete_manifest(tmp_path, small):
    from concurrent.futures import ThreadPoolExecutor

    spec = GenerateSpec(small, ("flat", "curved"), n=6, per_file=1)
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(
            lambda k: run_generate(spec, tmp_path / "o", device="cpu", progress=False,
                                   shard=Shard(k, 2)),
            (1, 2),
        ))
    assert sorted(c for r in reports for c in r.chunks) == list(range(6))
    assert [r["id"] for r in _rows(tmp_path / "o")] == [f"gen-s0-{i:07d}" for i in range(6)]


def test_simulate_to_npy_resumes_after_interruption(tmp_path, small, monkeypatch):
    from seisinv.generation import simulate_job

    maps = generate_velocity("style", 5, small, seed=8)
    np.save(tmp_path / "maps.npy", maps)
    reference = simulate(maps, small, device="cpu").numpy()
    real = simulate_job.simulate_batch
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Interrupt
        return real(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(simulate_job, "simulate_batch", flaky)
        with pytest.raises(Interrupt):
            run_simulate(tmp_path / "maps.npy", small, tmp_path / "g.npy", device="cpu",
                         batch=2, progress=False)
    assert not (tmp_path / "g.npy").exists()  # never a half-filled output
    report = run_simulate(tmp_path / "maps.npy", small, tmp_path / "g.npy", device="cpu",
                          batch=2, progress=False)
    assert report.skipped == 2 and report.written == 3
    np.testing.assert_allclose(np.load(tmp_path / "g.npy"), reference, rtol=1e-5,
                               atol=1e-6 * np.abs(reference).max())
    # Nothing left but the output, its input and its provenance record (seisinv.outdir).
    assert sorted(p.name for p in tmp_path.iterdir()) == [".g.npy.provenance.json", "g.npy",
                                                          "maps.npy"]


def test_changed_mix_from_maps_are_refused_on_rerun(tmp_path, small):
    import os

    pool = generate_velocity("flat", 2, small, seed=0)
    np.save(tmp_path / "pool.npy", pool)
    spec = GenerateSpec(small, ("mix",), n=1, mix_from=str(tmp_path / "pool.npy"))
    run_generate(spec, tmp_path / "o", device="cpu", progress=False)
    np.save(tmp_path / "pool.npy", pool[::-1].copy())
    os.utime(tmp_path / "pool.npy", ns=(1, 1))  # a different modification time
    with pytest.raises(SeisinvError, match="mix_from_files"):
        run_generate(spec, tmp_path / "o", device="cpu", progress=False)


def test_velocity_maps_read_a_kaggle_tree_with_repeated_file_names(tmp_path):
    """A Kaggle GWI training tree (family folders, ``model/modelN.npy`` and ``velN.npy``): every
    map is read once, ids carry the family folder so repeated file names stay distinct."""
    from seisinv.survey import OPENFWI

    for family, name in (("FlatVel_A", "model/model1.npy"), ("CurveVel_A", "model/model1.npy"),
                         ("FlatFault_A", "vel2_1_0.npy")):
        path = tmp_path / family / name
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.full((2, 1, 70, 70), 3000.0, np.float32))
        (tmp_path / family / "data").mkdir(exist_ok=True)
    maps = VelocityMaps(tmp_path, OPENFWI)
    assert maps.ids == ["CurveVel_A-model1_0", "CurveVel_A-model1_1", "FlatFault_A-vel2_1_0_0",
                        "FlatFault_A-vel2_1_0_1", "FlatVel_A-model1_0", "FlatVel_A-model1_1"]
    assert maps[0].shape == (70, 70)
