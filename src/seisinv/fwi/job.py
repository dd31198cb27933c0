"""``seisinv fwi`` as a library call: invert every sample of a dataset into a prediction store.

Output directory (a ``PredictionStore`` plus FWI records)::

    OUT/
      manifest.json, velocity/<id>.npy   refined velocity, (nz, nx) float32, survey units
      fwi_config.json                     the FwiConfig and the initial-model choice
      fwi/<id>.json                       per-sample history: misfit per iteration, bands, ...
      fwi/<id>.csv                        the same history as a table
      convergence.png                     misfit / first misfit against iteration, every sample

A sample is finished when its ``velocity/<id>.npy`` exists; its history is written first, so a
run killed at any point resumes by skipping finished ids.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seisinv.errors import ArgumentError, ConfigError, DataError
from seisinv.fwi.config import FwiConfig
from seisinv.fwi.initial import gradient_model, initial_from_store, smooth_model
from seisinv.fwi.invert import Forward, FwiResult, invert
from seisinv.inference.store import STORE_NAMES
from seisinv.io import atomic_open, disk_full_error, write_json
from seisinv.outdir import Writes
from seisinv.survey import Survey, load_survey

# Everything ``seisinv fwi`` writes at the top of its output (``seisinv.outdir.Writes``).
FWI_WRITES = Writes("fwi_config.json", (*STORE_NAMES, "fwi_config.json", "fwi", "convergence.png"))

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FwiJobSummary:
    """What ``run_fwi`` did: ids inverted now, ids skipped as finished, output folder."""

    out: Path
    inverted: list[str]
    skipped: list[str]
    wall_s: float


def initial_model(init: str, survey: Survey, sample_id: str,
                  smooth_sigma_m: float = 0.0) -> np.ndarray:
    """The ``(nz, nx)`` starting model for ``init`` "smooth", "gradient" or a prediction folder.

    ``smooth_sigma_m`` smooths a prediction start (metres); for ``smooth`` it overrides the
    default smoothing length.
    """
    if init == "gradient":
        return gradient_model(survey)
    if init == "smooth":
        return smooth_model(survey, sigma_m=smooth_sigma_m or None)
    from seisinv.inference.store import PredictionStore

    if not (Path(init) / "manifest.json").exists():
        raise ConfigError(f"init {init!r}: expected smooth, gradient or a prediction directory "
                          "(with manifest.json)", "init")
    return initial_from_store(PredictionStore(init), sample_id, survey, smooth_sigma_m)


def history_record(result: FwiResult, index: int, sample_id: str) -> dict:
    """The JSON history of sample ``index`` of a batch result."""
    record = {
        "id": sample_id,
        "iteration": list(range(result.misfit.shape[1])),
        "band_hz": result.band_hz.tolist(),
        "misfit": result.misfit[index].tolist(),
        "misfit_start": float(result.misfit_start[index]),
        "misfit_end": float(result.misfit_end[index]),
        "wall_s": result.wall_s / result.velocity.shape[0],
    }
    if result.model_mae is not None:
        record["model_mae"] = result.model_mae[index].tolist()
    if result.prior is not None:
        record["prior"] = result.prior[index]
        record["prior_reason"] = result.prior_reason[index]
        record["stop"] = result.stop[index]
        record["iterations_done"] = result.iterations[index]
        record["simulations"] = result.evaluations[index]
    if result.family is not None:
        record["family"] = result.family[index]
        record["family_source"] = result.family_source[index]
    return record


def _write_history(folder: Path, record: dict) -> None:
    write_json(folder / f"{record['id']}.json", record)
    with atomic_open(folder / f"{record['id']}.csv", "w") as handle:
        handle.write("iteration,band_hz,misfit" + (",model_mae" if "model_mae" in record else ""))
        handle.write("\n")
        for i in record["iteration"]:
            row = [str(i), f"{record['band_hz'][i]:g}", f"{record['misfit'][i]:.8g}"]
            if "model_mae" in record:
                row.append(f"{record['model_mae'][i]:.6g}")
            handle.write(",".join(row) + "\n")


def read_histories(out: str | os.PathLike) -> list[dict]:
    """Every per-sample history of an FWI output folder, sorted by id."""
    folder = Path(out) / "fwi"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def run_fwi(data: str | os.PathLike | Sequence[str | os.PathLike], survey: Survey | str,
            init: str, out: str | os.PathLike, config: FwiConfig, *,
            limit: int | None = None, smooth_sigma_m: float = 0.0,
            simulation_coarsen: int | None = None,
            forward: Forward | None = None, progress: bool = True,
            on_sample: Callable[[str], None] | None = None,
            overwrite: bool = False) -> FwiJobSummary:
    """Invert every sample of ``data`` (resumable) and write a prediction store to ``out``.

    Args:
        data: dataset root(s) readable by ``seisinv.data.open_dataset``.
        survey: the survey (preset name, YAML path or ``Survey``).
        init: "smooth", "gradient" or a prediction directory (a network's answer).
        out: output folder (created; finished samples in it are skipped).
        config: inversion settings.
        limit: invert only the first ``limit`` samples.
        smooth_sigma_m: smoothing of the start in metres (see ``initial_model``).
        simulation_coarsen: simulate on an internal grid this many times coarser than the survey
            grid (``survey.simulation.coarsen``, slowness-averaged; see docs/physics.md), e.g. 4
            for Speed & Structure's 1 m grid. The model and the output stay on the survey grid.
        forward: forward model override (tests).
        progress: draw the progress bar.
        on_sample: called with each id once its result is written.
        overwrite: ``out`` was made from other data, start or settings: delete it and start
            again (default: refuse, naming the difference; see ``seisinv.outdir``).

    Returns:
        A ``FwiJobSummary``.
    """
    import time

    from seisinv.data import open_dataset
    from seisinv.outdir import claim_output, dataset_identity

    started = time.perf_counter()
    if limit is not None and limit < 1:
        raise ArgumentError(f"limit {limit}: must be a positive number of samples",
                            "limit")
    if init not in ("smooth", "gradient") and not (Path(init) / "manifest.json").exists():
        raise ConfigError(f"init {init!r}: expected smooth, gradient or a prediction directory "
                          "(with manifest.json)", "init")  # before anything is written
    survey = load_survey(survey)
    source = open_dataset(data, survey)
    indices = list(range(len(source)))[:limit]
    if not indices:
        raise DataError(f"{data}: no samples to invert")
    out = Path(out)
    inputs = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    settings = {"config": config.model_dump(), "init": str(init),
                "smooth_sigma_m": smooth_sigma_m, "simulation_coarsen": simulation_coarsen}
    init_dir = None if init in ("smooth", "gradient") else init
    # The device does not change the answer (beyond rounding): a run may resume on another one.
    provenance = {**settings, "config": config.model_dump(exclude={"device"}),
                  "data": dataset_identity(inputs), "survey": survey.to_dict(),
                  # the maps only: qc/evaluate/report files added beside them change nothing
                  "init_files": dataset_identity(Path(init_dir) / "velocity") if init_dir else None}
    with claim_output(out, "seisinv fwi", provenance, inputs=[*inputs, init_dir],
                      overwrite=overwrite, writes=FWI_WRITES):
        try:
            return _invert_into(out, source, survey, init, config, indices, settings,
                                smooth_sigma_m, simulation_coarsen, forward, progress,
                                on_sample, started)
        except OSError as exc:
            done = sum((out / "velocity" / f"{source.ids[i]}.npy").exists() for i in indices)
            raise disk_full_error(exc, out, done, len(indices)) from None


def _invert_into(out, source, survey, init, config, indices, settings, smooth_sigma_m,
                 simulation_coarsen, forward, progress, on_sample, started) -> FwiJobSummary:
    import time

    from seisinv.inference.store import PredictionStore
    from seisinv.runtime import progress_bar

    store = PredictionStore(out, survey, source=f"seisinv fwi --init {init}")
    if not (out / "fwi_config.json").exists():  # recorded once; provenance.json guards it
        write_json(out / "fwi_config.json", settings)
    simulated_survey = survey
    if simulation_coarsen is not None:
        simulated_survey = survey.replace(simulation=survey.simulation.model_copy(
            update={"coarsen": simulation_coarsen}))
    ids = source.ids
    todo = [i for i in indices if not store.has(ids[i])]
    skipped = [ids[i] for i in indices if store.has(ids[i])]
    from seisinv.fwi.batching import resolve_batch_size
    from seisinv.runtime import resolve_device

    itemsize = 8 if config.optimizer == "lbfgs" and config.precision != "float32" else 4
    batch = resolve_batch_size(config.batch_size, survey, resolve_device(config.device), itemsize)
    inverted: list[str] = []
    with progress_bar(disable=not progress) as bar:
        task = bar.add_task("fwi", total=len(todo) * config.iters)
        for first in range(0, len(todo), batch):
            samples = [source[i] for i in todo[first:first + batch]]
            observed = np.stack([s.gathers for s in samples])
            start = np.stack([initial_model(init, survey, s.id, smooth_sigma_m) for s in samples])
            truths = [s.velocity for s in samples]
            truth = np.stack(truths) if all(t is not None for t in truths) else None
            result = invert(observed, start, simulated_survey, config, true_velocity=truth,
                            forward=forward, families=[s.family for s in samples],
                            informative_start=init not in ("smooth", "gradient"),
                            on_iteration=lambda i, m, n=len(samples): bar.advance(task, n))
            for k, sample in enumerate(samples):
                if result.prior is not None:
                    log.info("fwi %s: prior %s (%s)", sample.id, result.prior[k],
                             result.prior_reason[k])
                _write_history(out / "fwi", history_record(result, k, sample.id))
                store.write(sample.id, result.velocity[k])
                inverted.append(sample.id)
                if on_sample is not None:
                    on_sample(sample.id)
    histories = read_histories(out)
    if histories:
        from seisinv.fwi.plot import convergence_plot

        convergence_plot(histories, out / "convergence.png")
    return FwiJobSummary(out=out, inverted=inverted, skipped=skipped,
                         wall_s=time.perf_counter() - started)
