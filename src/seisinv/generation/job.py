"""The ``seisinv generate`` job: velocity maps from the families, gathers from the physics,
written in the survey's native layout, resumable and shardable.

Work is cut into chunks of ``per_file`` consecutive samples (sample ``i`` is in chunk
``i // per_file``). A chunk is the unit of resumption and sharding: shard ``k`` of ``N`` (and
torchrun rank ``r`` of ``W``) takes the chunks ``c`` with ``c % (N * W) == (k - 1) * W + r``.
Sample ``i`` is always built from ``sample_seed(seed, i)`` and family ``families[i % len]``, so
the output does not depend on how the work was split or how often it was restarted.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml

from seisinv.errors import ArgumentError, SeisinvError
from seisinv.generation.common import auto_batch, rate_text, simulate_batch
from seisinv.generation.manifest import (
    PROGRESS_DIR,
    chunk_done,
    folder_lock,
    rebuild_manifest,
    record_chunk,
)
from seisinv.generation.maps import VelocityMaps
from seisinv.generation.pipeline import (
    LOOKAHEAD,
    MIN_GPU_BATCH,
    PIPELINE_BATCHES,
    BackgroundWriter,
    MapBatches,
    auto_workers,
)
from seisinv.generation.writers import (
    atomic_memmap,
    folder_complete,
    remove_stale,
    write_sample_folder,
)
from seisinv.geology import check_family, check_vrange, resolve_family, sample_seed, velocity_sample
from seisinv.geology.base import expand_families
from seisinv.geology.mix import MixOptions
from seisinv.geology.transform import TransformOptions
from seisinv.io import disk_full_error, write_yaml
from seisinv.outdir import (
    LOCK_NAME,
    OutputError,
    check_out_not_inside_inputs,
    clear_output,
    lock_output,
    refuse_foreign,
)
from seisinv.runtime import DistInfo, barrier, init_distributed
from seisinv.survey import Survey, survey_from_dict

log = logging.getLogger(__name__)

SPEC_FILE = "generate.yaml"
SURVEY_FILE = "survey.yaml"


@dataclass(frozen=True)
class GenerateSpec:
    """What a generated dataset holds; a rerun into the same folder must ask for the same.

    Attributes:
        survey: grid, geometry, units and on-disk layout.
        families: family names cycled over sample indices (``fault`` alias allowed).
        n: total number of samples.
        seed: run seed; sample ``i`` uses ``sample_seed(seed, i)``.
        per_file: samples per chunk (per stacked file for the OpenFWI layout).
        vrange: (vmin, vmax) in survey units, default the survey's range.
        mix_from: velocity maps that ``mix`` samples blend and ``transform`` samples warp
            (None: fresh maps).
        mix_flips: ``mix`` flips each map left-right with a fair coin first; False gives
            exactly ``w * V1 + (1 - w) * V2``.
        mix_weight: (low, high) range of ``mix``'s uniform weight ``w`` (GWI 3rd place: 0.3-0.7).
        transform_crop, transform_rotation_deg, transform_shear, transform_flip: the
            ``transform`` family's warp ranges (``seisinv.geology.transform.TransformOptions``;
            the GWI 1st place's RandomAffine used 15 degrees and a 15-degree shear).
    """

    survey: Survey
    families: tuple[str, ...]
    n: int
    seed: int = 0
    per_file: int = 500
    vrange: tuple[float, float] | None = None
    mix_from: str | None = None
    mix_flips: bool = True
    mix_weight: tuple[float, float] = (0.0, 1.0)
    transform_crop: tuple[float, float] = TransformOptions.crop
    transform_rotation_deg: float = TransformOptions.rotation_deg
    transform_shear: float = TransformOptions.shear
    transform_flip: float = TransformOptions.flip

    def __post_init__(self) -> None:
        # Group names (``openfwi``) stand for their members.
        object.__setattr__(self, "families", expand_families(self.families))
        object.__setattr__(self, "mix_weight", self.mix_options.weight)  # checks the range
        object.__setattr__(self, "transform_crop", tuple(self.transform_options.crop))  # checks
        if not self.families:
            raise ArgumentError("families: name at least one velocity family", "families")
        for family in self.families:
            check_family(family)
        if self.n < 1:
            raise ArgumentError(f"n {self.n}: must be at least 1", "n")
        if self.per_file < 1:
            raise ArgumentError(f"per_file {self.per_file}: must be at least 1", "per_file")
        if self.seed < 0:
            raise ArgumentError(f"seed {self.seed}: must be non-negative", "seed")
        check_vrange(self.survey, self.vrange)
        if self.mix_from is not None and not {"mix", "transform"} & set(self.families):
            raise ArgumentError(
                "mix_from is given but neither 'mix' nor 'transform' is among the families",
                "mix_from",
            )

    @property
    def mix_options(self) -> MixOptions:
        return MixOptions(flips=self.mix_flips, weight=tuple(self.mix_weight))

    @property
    def transform_options(self) -> TransformOptions:
        return TransformOptions(crop=tuple(self.transform_crop),
                                rotation_deg=self.transform_rotation_deg,
                                shear=self.transform_shear, flip=self.transform_flip)

    @property
    def velocity_range(self) -> tuple[float, float]:
        return check_vrange(self.survey, self.vrange)

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.n / self.per_file)

    def identity(self) -> dict:
        """The arguments recorded in ``generate.yaml`` and compared on a rerun."""
        lo, hi = self.velocity_range
        return {
            "survey": self.survey.name,
            "families": list(self.families),
            "n": self.n,
            "seed": self.seed,
            "per_file": self.per_file,
            "vmin": lo,
            "vmax": hi,
            "mix_from": str(Path(self.mix_from).resolve()) if self.mix_from else None,
            # Recorded only when set, so runs made before these options resume unchanged.
            **({} if self.mix_flips else {"mix_flips": False}),
            **({"mix_weight": list(self.mix_weight)} if self.mix_weight != (0.0, 1.0) else {}),
            **({"transform": {**asdict(self.transform_options),
                              "crop": list(self.transform_crop)}}
               if self.transform_options != TransformOptions() else {}),
        }

    def sample_id(self, index: int) -> str:
        return f"gen-s{self.seed}-{index:07d}"

    def chunk_range(self, chunk: int) -> range:
        """Sample indices of ``chunk``."""
        return range(chunk * self.per_file, min((chunk + 1) * self.per_file, self.n))


@dataclass(frozen=True)
class Shard:
    """Part ``k`` (1-based) of ``count`` equal parts of the chunks."""

    k: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        """``"K/N"`` with 1 <= K <= N, or None for the whole job."""
        if text is None or text == "":
            return cls()
        try:
            k, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise ArgumentError(f"shard {text!r}: expected K/N, e.g. 1/4", "shard") from None
        if count < 1 or not 1 <= k <= count:
            raise ArgumentError(f"shard {text!r}: expected K/N with 1 <= K <= N", "shard")
        return cls(k, count)

    def chunks(self, n_chunks: int, rank: int = 0, world_size: int = 1) -> list[int]:
        """The chunks this shard (and torchrun rank) works on."""
        parts = self.count * world_size
        mine = (self.k - 1) * world_size + rank
        return [c for c in range(n_chunks) if c % parts == mine]


@dataclass
class GenerateReport:
    """What a ``run_generate`` call did."""

    out: Path
    total: int
    chunks: list[int]
    written: int = 0
    skipped: int = 0
    seconds: float = 0.0
    manifest_rows: int = 0

    @property
    def samples_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def _open_pool(spec: GenerateSpec) -> VelocityMaps | None:
    if spec.mix_from is None:
        return None
    pool = VelocityMaps(spec.mix_from, spec.survey)
    pool.check_all()
    lo, hi = spec.velocity_range
    tolerance = 1e-3 * (hi - lo)
    for i in range(len(pool)):
        v = pool[i]
        if v.min() < lo - tolerance or v.max() > hi + tolerance:
            raise ArgumentError(
                f"mix_from {spec.mix_from}: map {pool.ids[i]} spans {v.min():g}..{v.max():g} "
                f"{spec.survey.units}, outside the velocity range {lo:g}..{hi:g}", "mix_from"
            )
    return pool


def prepare_output(spec: GenerateSpec, out: Path, pool: VelocityMaps | None = None,
                   overwrite: bool = False) -> None:
    """Create ``out`` (or check it is this job's earlier output) and record survey and spec.

    Raises:
        SeisinvError: ``out`` is not a writable folder, holds something else, or holds a run
            made with different arguments (the message lists them) and ``overwrite`` is False
            (True deletes the earlier output and starts again).
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"out {out}: exists and is not a folder")
    # Before anything is created in it: a foreign folder gets no .progress/ stub.
    if out.is_dir() and not (out / SPEC_FILE).exists() and not (out / SURVEY_FILE).exists():
        refuse_foreign(out, "seisinv generate", own=(PROGRESS_DIR,))
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / PROGRESS_DIR).mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"out {out}: cannot create folder ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"out {out}: folder is not writable")
    with folder_lock(out):
        spec_path = out / SPEC_FILE
        wanted = spec.identity()
        if spec.mix_from is not None:  # the maps mixed must be the same files, unchanged
            pool = pool or VelocityMaps(spec.mix_from, spec.survey)
            wanted["mix_from_files"] = pool.fingerprint()
        if spec_path.exists():
            earlier = yaml.safe_load(spec_path.read_text()) or {}
            # Both sides' keys: an option recorded only when set must also match when unset now.
            changed = [k for k in {**earlier, **wanted} if earlier.get(k) != wanted.get(k)]
            if changed and overwrite:
                clear_output(out)
                (out / PROGRESS_DIR).mkdir(exist_ok=True)
                changed = []
                spec_path.unlink(missing_ok=True)
            elif changed:
                diffs = ", ".join(
                    f"{k}={earlier.get(k)!r} (now {wanted.get(k)!r})" for k in changed
                )
                raise OutputError(
                    f"out {out}: holds a generate run with different arguments: {diffs}; "
                    "rerun with the same arguments to resume, choose another output, or pass "
                    "overwrite=True to start again"
                )
        if spec_path.exists():
            stored = survey_from_dict(
                yaml.safe_load((out / SURVEY_FILE).read_text()), source=str(out / SURVEY_FILE)
            )
            if stored.to_dict() != spec.survey.to_dict():
                raise OutputError(
                    f"out {out}: was generated for a different survey definition "
                    f"({out / SURVEY_FILE}); use the same survey or another output"
                )
            return
        # survey.yaml alone is a first run killed before generate.yaml was written.
        others = [p.name for p in out.iterdir() if p.name not in (PROGRESS_DIR, SURVEY_FILE)
                  and not p.name.startswith(LOCK_NAME)]
        if others:
            raise OutputError(
                f"out {out}: not empty and not a seisinv generate output "
                f"(found {', '.join(sorted(others)[:3])}); choose an empty or new folder"
            )
        try:
            write_yaml(out / SURVEY_FILE, spec.survey.to_dict())
            write_yaml(spec_path, wanted)
        except OSError as exc:
            raise OutputError(f"out {out}: cannot write ({exc.strerror or exc})") from None


def prepare_ranks(spec: GenerateSpec, out: Path, pool: VelocityMaps | None, overwrite: bool,
                  dist: DistInfo) -> None:
    """``prepare_output`` on every torchrun rank, without races under ``overwrite``.

    Only rank 0 may clear an earlier output, and no rank may look at the folder or write a
    sample while it does: rank 0 prepares (clearing), every rank waits at a barrier (a gloo
    process group: no GPU needed), then the others prepare and find the folder ready. Without
    ``overwrite`` the ranks prepare independently (they write identical records under the
    folder's lock). If rank 0 fails, torchrun stops the ranks waiting at the barrier.
    """
    if not (overwrite and dist.world_size > 1):
        prepare_output(spec, out, pool, overwrite=overwrite)
        return
    import torch

    init_distributed(torch.device("cpu"))
    if dist.is_main:
        prepare_output(spec, out, pool, overwrite=True)
    barrier()
    if not dist.is_main:
        prepare_output(spec, out, pool)


def _chunk_velocities(
    spec: GenerateSpec, indices: list[int], pool: VelocityMaps | None
) -> tuple[np.ndarray, list[str], list[int]]:
    """Maps of ``indices``: (len, nz, nx) float32 survey units, concrete families, sample seeds."""
    maps = np.empty((len(indices), *spec.survey.velocity_shape), np.float32)
    families, seeds = [], []
    for row, index in enumerate(indices):
        seed = sample_seed(spec.seed, index)
        family = resolve_family(spec.families[index % len(spec.families)], seed)
        maps[row] = velocity_sample(
            family, spec.survey, seed, vrange=spec.velocity_range, pool=pool,
            mix_options=None if spec.mix_options.is_default else spec.mix_options,
            transform_options=spec.transform_options,
        )
        families.append(family)
        seeds.append(seed)
    return maps, families, seeds


def _pool_for_worker(spec: GenerateSpec) -> VelocityMaps | None:
    """The mix pool as a map-drawing worker opens it (the parent already checked it)."""
    return None if spec.mix_from is None else VelocityMaps(spec.mix_from, spec.survey)


def run_generate(
    spec: GenerateSpec,
    out: str | os.PathLike,
    *,
    device: str = "auto",
    shard: Shard | None = None,
    batch: int | None = None,
    workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> GenerateReport:
    """Generate (or finish generating) ``spec`` into ``out``; see the module docstring.

    Writes, for ``survey.layout == "openfwi"``, ``data/data{c}.npy`` (k, shots, nt, receivers)
    float32 and ``model/model{c}.npy`` (k, 1, *disk_velocity_shape) float32 per chunk ``c``; for
    ``"speed-structure"``, a folder ``<id>/`` per sample with ``receiver_data_src_{shot}.npy``
    (nt, receivers) float32 and ``vp_model.npy`` (disk_velocity_shape) float64. Chunks already
    finished are skipped; ``manifest.csv`` lists every finished sample.

    Maps are drawn ahead in ``workers`` processes, the physics runs in batches on the main
    thread, and files are written by a background thread (``generation.pipeline``); the output
    is byte-identical for any ``workers`` and ``batch``.

    Args:
        device: torch device for the physics ("auto": CUDA if present).
        shard: this process's part of the chunks (torchrun ranks split it further).
        batch: samples per physics call (default ``auto_batch`` for the device); a batch may
            span chunks.
        workers: map-drawing worker processes (None: ``pipeline.auto_workers``; 0: inline).
        progress: draw the progress bar (rank 0 only under torchrun).
        overwrite: ``out`` holds a run with other arguments: delete it and start again.
    """
    from seisinv.runtime import dist_info, resolve_device

    out = Path(out)
    survey = spec.survey
    dev = resolve_device(device)
    if batch is not None and batch < 1:
        raise ArgumentError(f"batch {batch}: must be at least 1", "batch")
    if workers is not None and workers < 0:
        raise ArgumentError(f"workers {workers}: must be at least 0", "workers")
    fixed_batch = batch is not None
    batch = batch or auto_batch(survey, spec.per_file, dev)
    workers = auto_workers(dev.type) if workers is None else workers
    if spec.mix_from is not None:
        check_out_not_inside_inputs(out, [spec.mix_from])
    pool = _open_pool(spec)
    dist = dist_info()
    shard = shard or Shard()
    # One lock per shard and rank: shards share the folder by design, a second copy of the same
    # shard would delete the first one's temporary files.
    name = f"shard{shard.k}of{shard.count}-rank{dist.rank}of{dist.world_size}"
    with lock_output(out, "seisinv generate", name=name):
        prepare_ranks(spec, out, pool, overwrite, dist)
        return _generate_chunks(spec, out, shard, pool, dist, dev, batch, fixed_batch, workers,
                                progress)


def _generate_chunks(spec, out, shard, pool, dist, dev, batch, fixed_batch, workers, progress):
    from rich.progress import TextColumn

    from seisinv.runtime import progress_bar

    chunks = shard.chunks(spec.n_chunks, dist.rank, dist.world_size)
    report = GenerateReport(out=out, total=sum(len(spec.chunk_range(c)) for c in chunks),
                            chunks=chunks)
    if dev.type == "cuda" and not fixed_batch:
        # At least PIPELINE_BATCHES batches, so drawing and writing overlap the physics.
        batch = min(batch, max(MIN_GPU_BATCH, math.ceil(report.total / PIPELINE_BATCHES)))
    log.info("generate: batch %d, %d map workers, device %s", batch, workers, dev)
    started = time.perf_counter()

    bar = progress_bar(TextColumn("{task.fields[rate]}"),
                       disable=not (progress and dist.is_main))
    # Worker processes start before any thread (progress bar, writer) exists.
    with MapBatches(_chunk_velocities, spec, pool, workers, _pool_for_worker) as maps, bar:
        task = bar.add_task("generate", total=report.total, rate="")

        def advance(k: int, written: bool = True) -> None:
            if written:
                report.written += k
            else:
                report.skipped += k
            bar.update(task, advance=k,
                       rate=rate_text(report.written, time.perf_counter() - started))

        try:
            _run_pipeline(spec, out, chunks, maps, str(dev), batch, advance)
        except OSError as exc:  # disk full, permissions, quota: the user can act on these
            complete = sum(len(spec.chunk_range(c)) for c in range(spec.n_chunks)
                           if chunk_done(out, c))
            raise disk_full_error(exc, out, complete, spec.n) from None
    report.manifest_rows = rebuild_manifest(out)
    report.seconds = time.perf_counter() - started
    return report


class _ChunkSink:
    """One chunk's output while it is being written (all methods run on the writer thread).

    ``write`` takes a batch's rows of this chunk; after the last sample the files are published
    and the chunk is recorded in the manifest. ``abort`` deletes what an unfinished chunk wrote
    to temporary files."""

    def __init__(self, spec: GenerateSpec, out: Path, chunk: int, todo: list[int],
                 kept_rows: list[dict]) -> None:
        self.spec, self.out, self.chunk = spec, out, chunk
        self.indices = list(spec.chunk_range(chunk))
        self.remaining = len(todo)
        self.rows = kept_rows
        self._files: contextlib.ExitStack | None = None
        self._data = self._model = None

    @property
    def stacked(self) -> bool:
        return self.spec.survey.layout == "openfwi"

    def _open(self) -> None:
        survey, chunk = self.spec.survey, self.chunk
        data_name, model_name = f"data{chunk}.npy", f"model{chunk}.npy"
        remove_stale(self.out / "data", data_name)
        remove_stale(self.out / "model", model_name)
        k = len(self.indices)
        self._files = contextlib.ExitStack()
        self._data = self._files.enter_context(
            atomic_memmap(self.out / "data" / data_name, (k, *survey.gather_shape)))
        self._model = self._files.enter_context(
            atomic_memmap(self.out / "model" / model_name, (k, 1, *survey.disk_velocity_shape)))

    def write(self, indices: list[int], maps: np.ndarray, gathers: np.ndarray,
              families: list[str], seeds: list[int]) -> None:
        survey = self.spec.survey
        first = self.indices[0]
        for row, index in enumerate(indices):
            sample = self.spec.sample_id(index)
            if self.stacked:
                if self._files is None:
                    self._open()
                self._data[index - first] = gathers[row]
                self._model[index - first, 0] = survey.velocity_to_disk(maps[row])
                where = {"file": f"data/data{self.chunk}.npy", "index": index - first}
            else:
                write_sample_folder(self.out / sample, gathers[row], survey, velocity=maps[row])
                where = {"file": sample, "index": 0}
            self.rows.append({"id": sample, "family": families[row], "seed": seeds[row],
                              **where})
        self.remaining -= len(indices)
        if self.remaining == 0:
            self.finish()

    def finish(self) -> None:
        from seisinv import __version__

        if self._files is not None:
            del self._data, self._model
            files, self._files = self._files, None
            files.close()  # flush, fsync and rename data{c}.npy and model{c}.npy
        rows = sorted(self.rows, key=lambda r: r["id"])
        for row in rows:
            row.update(survey=self.spec.survey.name, seisinv_version=__version__)
        record_chunk(self.out, self.chunk, rows)
        rebuild_manifest(self.out)

    def abort(self) -> None:
        if self._files is not None:
            self._data = self._model = None
            files, self._files = self._files, None
            with contextlib.suppress(Exception):
                files.__exit__(SeisinvError, SeisinvError("aborted"), None)


def _plan_chunk(spec: GenerateSpec, out: Path, chunk: int) -> tuple[list[int], list[dict]]:
    """Sample indices of ``chunk`` still to make, and manifest rows of samples kept from an
    earlier run (Speed & Structure folders finished before a kill)."""
    indices = list(spec.chunk_range(chunk))
    if spec.survey.layout == "openfwi":
        return indices, []
    todo, kept = [], []
    for index in indices:
        sample = spec.sample_id(index)
        remove_stale(out, sample)
        if folder_complete(out / sample, spec.survey):
            seed = sample_seed(spec.seed, index)
            family = resolve_family(spec.families[index % len(spec.families)], seed)
            kept.append({"id": sample, "family": family, "seed": seed, "file": sample,
                         "index": 0})
        else:
            todo.append(index)
    return todo, kept


def _run_pipeline(spec, out, chunks, maps, device, batch, advance) -> None:
    """Draw, simulate and write every unfinished sample of ``chunks``, ``batch`` at a time.

    Finished chunks stay finished when anything fails: gathers already computed are written
    and their chunks recorded before the error propagates; a partly written chunk is removed.
    """
    sinks: dict[int, _ChunkSink] = {}
    work: list[tuple[int, int]] = []  # (chunk, sample index) still to make, in order
    writer = BackgroundWriter()

    def guarded(chunk: int, job) -> None:
        try:
            job()
        except OSError as exc:  # disk full, permissions, quota: the user can act on these
            complete = sum(len(spec.chunk_range(c)) for c in range(spec.n_chunks)
                           if chunk_done(out, c))
            raise disk_full_error(exc, out, complete, spec.n) from None

    try:
        for chunk in chunks:
            if chunk_done(out, chunk):
                advance(len(spec.chunk_range(chunk)), written=False)
                continue
            todo, kept = _plan_chunk(spec, out, chunk)
            if kept:
                advance(len(kept), written=False)
            sinks[chunk] = sink = _ChunkSink(spec, out, chunk, todo, kept)
            if not todo:
                writer.submit(lambda c=chunk, s=sink: guarded(c, s.finish))
            work.extend((chunk, index) for index in todo)
        batches = [work[i:i + batch] for i in range(0, len(work), batch)]
        ahead = [maps.submit([index for _, index in part]) for part in batches[:LOOKAHEAD]]
        for b, part in enumerate(batches):
            velocity, families, seeds = ahead.pop(0)()
            if b + LOOKAHEAD < len(batches):
                ahead.append(maps.submit([index for _, index in batches[b + LOOKAHEAD]]))
            gathers = simulate_batch(velocity, spec.survey, device)
            rows = 0
            for chunk in dict.fromkeys(c for c, _ in part):  # chunks in order
                picked = [r for r, (c, _) in enumerate(part) if c == chunk]
                job = functools.partial(
                    sinks[chunk].write, [part[r][1] for r in picked], velocity[picked],
                    gathers[picked], [families[r] for r in picked], [seeds[r] for r in picked])
                writer.submit(functools.partial(guarded, chunk, job))
                rows += len(picked)
            writer.submit(functools.partial(advance, rows))
    except BaseException:
        # Publish what was computed, then drop unfinished chunks; the first error wins.
        with contextlib.suppress(BaseException):
            writer.close()
        for sink in sinks.values():
            sink.abort()
        raise
    try:
        writer.close()
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise
