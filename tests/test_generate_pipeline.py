"""generate as a pipeline: output byte-identical for any number of map workers, batch size and
after a resume; batch sizing from memory; the writer thread's error handling."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from seisinv.errors import SeisinvError
from seisinv.generation import GenerateSpec, run_generate
from seisinv.generation import job as job_module
from seisinv.generation.common import MEMORY_FRACTION, auto_batch
from seisinv.generation.pipeline import BackgroundWriter, auto_workers, parse_workers
from seisinv.physics.forward import simulate_bytes_per_sample


class Interrupt(Exception):
    pass


@pytest.fixture
def small(tiny_survey):
    """16 x 16 grid, 60 time samples, 2 shots, 6 receivers: a few ms per sample."""
    return tiny_survey.replace(
        name="pipe", nz=16, nx=16, nt=60, source_x=(0.0, 150.0),
        receiver_x=tuple(30.0 * i for i in range(6)),
    )


def _files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")
                  if p.is_file() and p.name != "lock")


def _assert_same_bytes(a: Path, b: Path) -> None:
    names = _files(a)
    assert names == _files(b)
    assert any(n.startswith("data/") for n in names) or any("vp_model" in n for n in names)
    for name in names:
        assert filecmp.cmp(a / name, b / name, shallow=False), name


def test_output_is_byte_identical_for_0_1_2_workers_and_any_batch(tmp_path, small):
    # style and salt draw random fields: a worker seeded wrongly would change them.
    spec = GenerateSpec(small, ("flat", "style", "salt"), n=7, seed=5, per_file=3)
    run_generate(spec, tmp_path / "w0", device="cpu", workers=0, progress=False)
    run_generate(spec, tmp_path / "w1", device="cpu", workers=1, batch=2, progress=False)
    run_generate(spec, tmp_path / "w2", device="cpu", workers=2, batch=5, progress=False)
    _assert_same_bytes(tmp_path / "w0", tmp_path / "w1")
    _assert_same_bytes(tmp_path / "w0", tmp_path / "w2")


def test_speed_structure_layout_is_byte_identical_with_workers(tmp_path, small):
    ss = small.replace(name="pipe-ss", units="km/s", vmin=1.5, vmax=4.5,
                       layout="speed-structure", velocity_axes="xz", shot_names=("1", "16"))
    spec = GenerateSpec(ss, ("curved", "salt"), n=3, seed=1, per_file=2)
    run_generate(spec, tmp_path / "w0", device="cpu", workers=0, progress=False)
    run_generate(spec, tmp_path / "w2", device="cpu", workers=2, batch=3, progress=False)
    _assert_same_bytes(tmp_path / "w0", tmp_path / "w2")


def test_resume_with_workers_after_a_kill_mid_chunk_matches(tmp_path, small, monkeypatch):
    spec = GenerateSpec(small, ("flat", "style"), n=5, seed=2, per_file=2)
    run_generate(spec, tmp_path / "ref", device="cpu", workers=0, progress=False)
    real, calls = job_module.simulate_batch, {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # batch 1: chunks 0 and 1 done, chunk 2 never started
            raise Interrupt
        return real(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(job_module, "simulate_batch", flaky)
        with pytest.raises(Interrupt):
            run_generate(spec, tmp_path / "run", device="cpu", workers=2, batch=1,
                         progress=False)
    assert not [p for p in (tmp_path / "run").rglob("*") if p.name.endswith(".tmp")]
    report = run_generate(spec, tmp_path / "run", device="cpu", workers=1, batch=3,
                          progress=False)
    assert report.skipped == 2 and report.written == 3  # chunk 1 was killed after 1 of 2
    _assert_same_bytes(tmp_path / "ref", tmp_path / "run")


def test_a_batch_spanning_chunks_publishes_each_chunk_once(tmp_path, small):
    spec = GenerateSpec(small, ("flat",), n=5, seed=0, per_file=2)
    report = run_generate(spec, tmp_path / "o", device="cpu", workers=0, batch=5,
                          progress=False)
    assert report.written == 5 and report.manifest_rows == 5
    assert sorted(p.name for p in (tmp_path / "o" / "data").iterdir()) == [
        "data0.npy", "data1.npy", "data2.npy"]


def test_writer_error_reaches_the_caller_and_later_jobs_are_skipped():
    done = []
    writer = BackgroundWriter(depth=1)
    writer.submit(lambda: done.append(1))
    writer.submit(lambda: (_ for _ in ()).throw(OSError("disk full")))
    writer.submit(lambda: done.append(3))
    with pytest.raises(OSError, match="disk full"):
        writer.close()
    assert done == [1]


def test_workers_argument_and_auto_rule(monkeypatch):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert parse_workers("auto") is None and parse_workers(None) is None
    assert parse_workers("3") == 3
    with pytest.raises(SeisinvError, match="^workers "):
        parse_workers("-1")
    with pytest.raises(SeisinvError, match="^workers "):
        parse_workers("many")
    # CPU: maps inline; GPU: all cores but one draw maps, at most 8.
    assert auto_workers("cpu", cores=2) == 0
    assert auto_workers("cpu", cores=16) == 0
    assert auto_workers("cuda", cores=2) == 1
    assert auto_workers("cuda", cores=16) == 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun, 4 GPUs: 4 cores per rank
    assert auto_workers("cuda", cores=16) == 3


def test_cpu_batch_is_capped_by_free_ram(small, monkeypatch):
    from seisinv.generation import common

    per_sample = simulate_bytes_per_sample(small)
    assert per_sample > 4 * small.n_shots * small.nt * small.n_receivers  # at least the traces
    monkeypatch.setattr(common, "free_ram_bytes", lambda: int(3.5 * per_sample / MEMORY_FRACTION))
    assert auto_batch(small, 500, "cpu") == 3
    monkeypatch.setattr(common, "free_ram_bytes", lambda: 10**12)
    assert auto_batch(small, 500, "cpu") == 64
    assert auto_batch(small, 10, "cpu") == 10


def test_bytes_per_sample_grows_with_the_grid_and_the_record(small):
    base = simulate_bytes_per_sample(small)
    assert simulate_bytes_per_sample(small.replace(nt=120)) > base
    assert simulate_bytes_per_sample(small.replace(nz=32)) > base
    wider = small.replace(simulation=small.simulation.model_copy(update={"boundary_width": 40}))
    assert simulate_bytes_per_sample(wider) > base
