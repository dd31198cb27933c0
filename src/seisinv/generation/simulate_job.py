"""The ``seisinv simulate`` job: forward-model velocity maps a user already has.

Reads maps with ``VelocityMaps`` (``.npy`` stacks or Speed & Structure folders, survey units,
on-disk axis order) and writes gathers in the survey's layout:

- ``layout == "openfwi"``: one ``.npy`` file (n, shots, nt, receivers) float32, rows in input
  order; it appears only when complete, and a killed run continues from its last batch;
- ``layout == "speed-structure"``: ``OUT/<id>/receiver_data_src_{shot}.npy`` (nt, receivers)
  float32 per sample, with ``vp_model.npy`` copied in when the folder has none; finished folders
  are skipped on a rerun.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seisinv.errors import ArgumentError
from seisinv.generation.common import auto_batch, rate_text, simulate_batch
from seisinv.generation.maps import VELOCITY_FILE, VelocityMaps
from seisinv.generation.writers import (
    add_gathers_to_folder,
    folder_complete,
    remove_stale,
    write_sample_folder,
)
from seisinv.io import disk_full_error, preallocate, publish_mode, write_json
from seisinv.outdir import (
    OutputError,
    check_out_not_inside_inputs,
    claim_output,
    dataset_identity,
    lock_output,
)
from seisinv.survey import Survey


@dataclass
class SimulateReport:
    """What a ``run_simulate`` call did."""

    out: Path
    total: int
    written: int = 0
    skipped: int = 0
    seconds: float = 0.0

    @property
    def samples_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def run_simulate(
    models: str | os.PathLike,
    survey: Survey,
    out: str | os.PathLike,
    *,
    device: str = "auto",
    batch: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> SimulateReport:
    """Simulate the survey's gathers over every map in ``models`` and write them to ``out``.

    Args:
        models: .npy file/folder or Speed & Structure sample folder(s); maps in survey units,
            on-disk axis order (``survey.disk_velocity_shape``).
        survey: geometry, physics settings and output layout.
        out: a ``.npy`` file for the OpenFWI layout, a folder for Speed & Structure.
        device: torch device ("auto": CUDA if present).
        batch: samples per physics call (default ``auto_batch``).
        progress: draw the progress bar.
        overwrite: ``out`` was simulated from other maps or another survey: delete it and start
            again (default: refuse, naming the difference; see ``seisinv.outdir``).

    Raises:
        DataError: a map of the wrong shape, non-finite, or in the wrong units (names the file).
        SeisinvError: an output path that does not fit the layout or cannot be written.
    """
    from seisinv.runtime import resolve_device

    resolve_device(device)
    out = Path(out)
    if batch is not None and batch < 1:
        raise ArgumentError(f"batch {batch}: must be at least 1", "batch")
    batch = batch or auto_batch(survey, 64)
    if survey.layout == "openfwi" and out.suffix != ".npy":
        raise OutputError(
            f"out {out}: survey {survey.name!r} stores gathers as one .npy file; "
            "give a path ending in .npy"
        )
    if survey.layout == "speed-structure" and out.exists() and not out.is_dir():
        raise OutputError(f"out {out}: survey {survey.name!r} writes a folder per sample")
    # Speed & Structure folders may receive their gathers in place: vp_model.npy is kept.
    in_place = survey.layout == "speed-structure" and out.resolve() == Path(models).resolve()
    if not in_place:
        check_out_not_inside_inputs(out, [models])
    maps = VelocityMaps(models, survey)
    maps.check_all()
    if in_place:
        with lock_output(out, "seisinv simulate"):
            return _run_simulate(maps, survey, out, device, batch, progress)
    provenance = {"models": dataset_identity(models), "survey": survey.to_dict()}
    with claim_output(out, "seisinv simulate", provenance, inputs=[models], overwrite=overwrite,
                      is_file=survey.layout == "openfwi"):
        return _run_simulate(maps, survey, out, device, batch, progress)


def _run_simulate(maps, survey, out, device, batch, progress) -> SimulateReport:
    from rich.progress import TextColumn

    from seisinv.runtime import progress_bar

    report = SimulateReport(out=out, total=len(maps))
    started = time.perf_counter()
    bar = progress_bar(TextColumn("{task.fields[rate]}"), disable=not progress)
    try:
        with bar:
            task = bar.add_task("simulate", total=len(maps), rate="")

            def advance(k: int, simulated: bool = True) -> None:
                if simulated:
                    report.written += k
                else:
                    report.skipped += k
                elapsed = time.perf_counter() - started
                bar.update(task, advance=k, rate=rate_text(report.written, elapsed))

            if survey.layout == "openfwi":
                _simulate_to_file(maps, survey, out, device, batch, advance)
            else:
                todo = [i for i in range(len(maps))
                        if not folder_complete(out / maps.ids[i], survey, with_velocity=False)]
                advance(len(maps) - len(todo), simulated=False)
                _simulate_to_folders(maps, todo, survey, out, device, batch, advance)
    except OSError as exc:  # disk full, permissions, quota
        raise disk_full_error(exc, out, report.written + report.skipped, len(maps)) from None
    report.seconds = time.perf_counter() - started
    return report


def _simulate_to_file(maps, survey, out, device, batch, advance) -> None:
    """Fill ``out`` (n, shots, nt, receivers) batch by batch through a partial file beside it.

    ``.<name>.partial`` holds the rows so far and ``.<name>.partial.json`` how many are final
    (updated after each batch is flushed), so a killed run continues where it stopped when rerun
    with the same maps and survey; the partial file is renamed onto ``out`` when complete.
    """
    n = len(maps)
    shape = (n, *survey.gather_shape)
    partial = out.with_name(f".{out.name}.partial")
    state_path = out.with_name(f".{out.name}.partial.json")
    job = {"models": maps.fingerprint(), "n": n, "survey": survey.to_dict()}
    done = 0
    data = None
    if partial.exists() and state_path.exists():
        with contextlib.suppress(ValueError, OSError):
            state = json.loads(state_path.read_text())
            if state.get("job") == job:
                data = np.lib.format.open_memmap(partial, mode="r+")
                if data.shape == shape and data.dtype == np.float32:
                    done = int(state["done"])
                else:
                    data = None
    if data is None:
        out.parent.mkdir(parents=True, exist_ok=True)
        data = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=shape)
        publish_mode(partial)
        try:  # reserve the blocks now: a full disk is an OSError here, not a SIGBUS later
            preallocate(partial)
        except OSError:
            del data
            partial.unlink(missing_ok=True)
            raise
    advance(done, simulated=False)
    for start in range(done, n, batch):
        part = range(start, min(start + batch, n))
        data[start:start + len(part)] = simulate_batch(maps.batch(part), survey, device)
        data.flush()  # rows reach the file before the state claims them
        write_json(state_path, {"job": job, "done": start + len(part)})
        advance(len(part))
    del data
    with open(partial, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, out)
    state_path.unlink(missing_ok=True)


def _simulate_to_folders(maps, todo, survey, out, device, batch, advance) -> None:
    for start in range(0, len(todo), batch):
        part = todo[start:start + batch]
        velocity = maps.batch(part)
        gathers = simulate_batch(velocity, survey, device)
        for row, i in enumerate(part):
            folder = out / maps.ids[i]
            remove_stale(out, maps.ids[i])
            if (folder / VELOCITY_FILE).exists():
                add_gathers_to_folder(folder, gathers[row], survey)
            else:
                write_sample_folder(folder, gathers[row], survey, velocity=velocity[row])
        advance(len(part))
