"""Pseudo-labels: predicted maps of unlabelled inputs, forward-modelled into training pairs.

The Kaggle GWI 1st place's main lever (write-up 587388): predict the unlabelled test (and
validation) inputs, simulate the predicted maps with the survey's physics, and train the next
round on the self-consistent ``(simulated gathers, predicted velocity)`` pairs as well. The
simulated gathers replace the observed ones: the pair is exact for the physics even where the
prediction is wrong, which is what makes it safe training data.

``make_pseudo_labels`` writes one round as a dataset in the layout ``seisinv generate`` writes
(``manifest.csv`` + ``survey.yaml`` + stacked ``data/data{c}.npy`` / ``model/model{c}.npy``, or one
folder per sample for folder surveys), so every sample reads back as ``synthetic`` and is never
used for validation. Ids are ``pl{round}-{input id}`` (``-a{k}`` for augmented copies), so rounds
and the original data never collide. ``pseudo_label.json`` records the round's bookkeeping: round
index, the prediction directory and what made it, the input data, the count. Work is cut into
chunks of ``per_file`` samples; a killed job resumes at the first unfinished chunk.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seisinv.errors import DataError, SeisinvError
from seisinv.survey import Survey

RECORD_FILE = "pseudo_label.json"

# (velocity (nz, nx) survey units, rng) -> velocity (nz, nx): e.g. the geology layer's map
# transforms (crops resized to the grid, mild affine), as the 1st place augmented pseudo-labels.
MapAugment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass
class PseudoLabelReport:
    """What a ``make_pseudo_labels`` call did (``count`` = samples in the round's dataset)."""

    out: Path
    round: int
    count: int
    written: int
    skipped: int


def _identity(store, data, survey: Survey, round_index: int, copies: int, per_file: int) -> dict:
    info = {k: v for k, v in store.meta.get("info", {}).items() if k != "predicted_families"}
    return {
        "round": round_index,
        "predictions": str(Path(store.root).resolve()),
        "prediction_source": store.meta.get("source", ""),
        "prediction_info": info,
        "data": str(Path(data).resolve()) if isinstance(data, (str, os.PathLike)) else repr(data),
        "survey": survey.name,
        "augmented_copies": copies,
        "per_file": per_file,
    }


def _prepare(out: Path, identity: dict, survey: Survey) -> None:
    """Create ``out`` or check that it holds this very round (then it resumes)."""
    from seisinv.generation.manifest import PROGRESS_DIR
    from seisinv.io import write_json, write_yaml

    if out.exists() and not out.is_dir():
        raise SeisinvError(f"out {out}: exists and is not a folder")
    record = out / RECORD_FILE
    if record.exists():
        earlier = json.loads(record.read_text())
        changed = [k for k in identity if earlier.get(k) != identity[k]]
        if changed:
            diffs = ", ".join(f"{k}={earlier.get(k)!r} (now {identity[k]!r})" for k in changed)
            raise SeisinvError(f"out {out}: holds another pseudo-label round: {diffs}; choose "
                               "another folder")
        return
    if out.exists() and any(p.name != PROGRESS_DIR for p in out.iterdir()):
        raise SeisinvError(f"out {out}: not empty and not a pseudo-label round; choose an empty "
                           "or new folder")
    try:
        (out / PROGRESS_DIR).mkdir(parents=True, exist_ok=True)
        write_yaml(out / "survey.yaml", survey.to_dict())
        write_json(record, {**identity, "count": None, "complete": False})
    except OSError as exc:
        raise SeisinvError(f"out {out}: cannot write ({exc.strerror or exc})") from None


def geology_map_augment() -> MapAugment:
    """The geology layer's ``transform`` map augmentation (random crop re-sized to the grid, mild
    affine warp, seeded) as a ``MapAugment``.

    Raises:
        SeisinvError: this seisinv has no ``seisinv.geology.transform``.
    """
    try:
        from seisinv.geology.transform import transform_map
    except ImportError:
        raise SeisinvError("map augmentation needs seisinv.geology.transform (the 'transform' "
                           "family), which this installation lacks") from None
    return lambda velocity, rng: transform_map(rng, velocity)


def make_pseudo_labels(
    pred_dir: str | Path,
    data,
    survey: Survey | None,
    out: str | Path,
    device: str = "auto",
    *,
    round_index: int = 1,
    per_file: int = 500,
    batch: int | None = None,
    map_augment: MapAugment | None = None,
    copies: int = 0,
    seed: int = 0,
    progress: bool = True,
) -> PseudoLabelReport:
    """Forward-model the predictions of unlabelled inputs into a generated-layout dataset.

    Args:
        pred_dir: prediction directory holding a map for every sample of ``data``.
        data: the inputs that were predicted (dataset path or ``SampleSource``); fixes the ids
            (every one must have a prediction) and is recorded as the round's source.
        survey: the survey to simulate with (default: the prediction directory's).
        out: the round's dataset folder (created; resumes the same round; refuses another).
        device: torch device for the physics ("auto": CUDA if present).
        round_index: the pseudo-labelling round (>= 1), recorded and part of every id.
        per_file: samples per chunk (per stacked file in the OpenFWI layout).
        batch: samples per physics call (default ``generation.common.auto_batch``).
        map_augment: optional map transform; with ``copies`` >= 1, each prediction also yields
            ``copies`` transformed maps (seeded by ``seed``, round, id and copy), each simulated.
        copies: augmented copies per prediction (needs ``map_augment``).
        seed: seed of the map augmentation draws.

    Returns:
        A ``PseudoLabelReport``; ``out/pseudo_label.json`` holds the round's bookkeeping.

    Raises:
        DataError: predictions missing for some inputs, or holding NaN/inf (named).
        SeisinvError: bad arguments, or ``out`` holds something else.
    """
    from seisinv import __version__
    from seisinv.generation.common import auto_batch, simulate_batch
    from seisinv.generation.manifest import chunk_done, rebuild_manifest, record_chunk
    from seisinv.generation.writers import atomic_memmap, remove_stale, write_sample_folder
    from seisinv.inference.store import PredictionStore
    from seisinv.io import write_json
    from seisinv.runtime import progress_bar, resolve_device

    store = PredictionStore(pred_dir)
    survey = survey or store.survey
    if survey.velocity_shape != store.survey.velocity_shape or survey.units != store.survey.units:
        raise SeisinvError(f"pred_dir {pred_dir}: holds {store.survey.velocity_shape} maps in "
                           f"{store.survey.units}, survey {survey.name!r} wants "
                           f"{survey.velocity_shape} in {survey.units}")
    if round_index < 1:
        raise SeisinvError(f"round_index={round_index} must be at least 1")
    if per_file < 1 or (batch is not None and batch < 1):
        raise SeisinvError("per_file and batch must be at least 1")
    if copies < 0 or (copies and map_augment is None):
        raise SeisinvError(f"copies={copies}: needs map_augment and must be >= 0")
    resolve_device(device)
    if isinstance(data, (str, os.PathLike)):
        from seisinv.data import open_dataset

        source = open_dataset(data, survey)
    else:
        source = data
    ids = list(source.ids() if callable(source.ids) else source.ids)
    if not ids:
        raise DataError(f"data {data}: holds no sample")
    missing = sorted(set(ids) - set(store.ids()))
    if missing:
        shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
        raise DataError(f"pred_dir {pred_dir}: no prediction for {len(missing)} input(s) of "
                        f"{data}: {shown}")
    families = store.meta.get("info", {}).get("predicted_families", {})

    # Every output sample: (new id, input id, copy index or -1 for the prediction itself).
    jobs = [(f"pl{round_index}-{i}", i, -1) for i in ids]
    jobs += [(f"pl{round_index}-{i}-a{k}", i, k) for i in ids for k in range(copies)]
    out = Path(out)
    _prepare(out, _identity(store, data, survey, round_index, copies, per_file), survey)
    batch = batch or auto_batch(survey, per_file)

    def velocity(input_id: str, copy: int) -> np.ndarray:
        v = np.asarray(store.read(input_id), dtype=np.float64)
        if not np.all(np.isfinite(v)):
            raise DataError(f"pred_dir {pred_dir}: prediction {input_id!r} holds NaN/inf values")
        if copy >= 0:
            rng = np.random.default_rng([seed, round_index, zlib.crc32(input_id.encode()), copy])
            v = np.asarray(map_augment(v, rng), dtype=np.float64)
        # The physics needs maps in range; predictions may overshoot slightly.
        return np.clip(v, survey.vmin, survey.vmax).astype(np.float32)

    written = skipped = 0
    n_chunks = (len(jobs) + per_file - 1) // per_file
    with progress_bar(disable=not progress) as bar:
        task = bar.add_task(f"pseudo-labels round {round_index}", total=len(jobs))
        for chunk in range(n_chunks):
            part = jobs[chunk * per_file:(chunk + 1) * per_file]
            if chunk_done(out, chunk):
                skipped += len(part)
                bar.advance(task, len(part))
                continue
            rows = []
            try:
                if survey.layout == "openfwi":
                    data_name, model_name = f"data{chunk}.npy", f"model{chunk}.npy"
                    remove_stale(out / "data", data_name)
                    remove_stale(out / "model", model_name)
                    with (
                        atomic_memmap(out / "data" / data_name,
                                      (len(part), *survey.gather_shape)) as gathers,
                        atomic_memmap(out / "model" / model_name,
                                      (len(part), 1, *survey.disk_velocity_shape)) as model,
                    ):
                        for start in range(0, len(part), batch):
                            group = part[start:start + batch]
                            maps = np.stack([velocity(i, k) for _, i, k in group])
                            gathers[start:start + len(group)] = simulate_batch(maps, survey, device)
                            model[start:start + len(group), 0] = survey.velocity_to_disk(maps)
                            bar.advance(task, len(group))
                    rows = [{"id": new, "file": f"data/{data_name}", "index": k}
                            for k, (new, _, _) in enumerate(part)]
                else:
                    for start in range(0, len(part), batch):
                        group = part[start:start + batch]
                        maps = np.stack([velocity(i, k) for _, i, k in group])
                        simulated = simulate_batch(maps, survey, device)
                        for row, (new, _, _) in enumerate(group):
                            remove_stale(out, new)
                            write_sample_folder(out / new, simulated[row], survey,
                                                velocity=maps[row])
                        bar.advance(task, len(group))
                    rows = [{"id": new, "file": new, "index": 0} for new, _, _ in part]
            except OSError as exc:
                raise SeisinvError(f"out {out}: writing chunk {chunk} failed "
                                   f"({exc.strerror or exc}); rerun to resume") from None
            for row, (_, input_id, _) in zip(rows, part, strict=True):
                row.update(family=families.get(input_id, ""), seed=round_index,
                           survey=survey.name, seisinv_version=__version__)
            record_chunk(out, chunk, rows)
            written += len(part)
    count = rebuild_manifest(out)
    record = json.loads((out / RECORD_FILE).read_text())
    write_json(out / RECORD_FILE, {**record, "count": count, "complete": count == len(jobs)})
    return PseudoLabelReport(out=out, round=round_index, count=count, written=written,
                             skipped=skipped)


def read_rounds(folders) -> list[dict]:
    """The ``pseudo_label.json`` records of round folders, sorted by round (for reports).

    Raises:
        DataError: a folder without a readable record.
    """
    records = []
    for folder in folders:
        path = Path(folder) / RECORD_FILE
        try:
            records.append({**json.loads(path.read_text()), "folder": str(folder)})
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: not a pseudo-label record ({exc})") from None
    return sorted(records, key=lambda r: r.get("round", 0))
