"""Physics check without labels: do the predicted velocities explain the recorded gathers?

Each predicted velocity is forward-modelled with the survey (``seisinv.physics.simulate``) and the
simulated gathers are compared with the observed ones. The misfit is a relative L2 norm,
``||simulated - observed|| / ||observed||``, per shot and per sample (all shots together). A
prediction whose misfit exceeds the threshold is flagged: its simulated data disagree with what
was recorded, whatever a metric against (absent) labels would say. Works on test data.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seisinv.errors import DataError
from seisinv.inference.store import PredictionStore
from seisinv.io import write_json, write_text
from seisinv.survey import Survey

# Relative L2 above which a prediction is flagged. Measured on OpenFWI's grid with a two-layer
# model (2000/3000 m/s, interface at 350 m): the true map gives 0 (same simulator), +5 % velocity
# 0.35, +10 % 0.57, the interface one cell (10 m) too deep 0.55, three cells 0.71, a constant
# mean velocity 0.84, a constant 4400 m/s 1.30. Waveform misfits grow fast with time shifts, so
# the threshold separates "kinematically about right" from "explains little of the data".
DEFAULT_THRESHOLD = 0.75


def relative_misfit(
    simulated: np.ndarray, observed: np.ndarray, fit_amplitude: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Relative L2 misfit of gathers, per sample and per shot.

    Args:
        simulated, observed: (n, shots, time, receivers) in the survey's amplitude convention.
        fit_amplitude: first scale each sample's simulated data by the least-squares factor
            ``<s, o> / <s, s>`` (for data whose source amplitude is unknown).

    Returns:
        (per_sample (n,), per_shot (n, shots)), dimensionless; 0 = identical, 1 = as large as the
        data itself (e.g. simulated all zero).
    """
    sim = np.asarray(simulated, dtype=np.float64)
    obs = np.asarray(observed, dtype=np.float64)
    if sim.shape != obs.shape or sim.ndim != 4:
        raise DataError(f"simulated {sim.shape} and observed {obs.shape} gathers differ in shape")
    if fit_amplitude:
        num = (sim * obs).sum(axis=(1, 2, 3))
        den = (sim * sim).sum(axis=(1, 2, 3))
        sim = sim * np.where(den > 0, num / np.maximum(den, 1e-300), 1.0)[:, None, None, None]
    import torch

    from seisinv.physics.misfit import relative_l2

    sim_t, obs_t = torch.from_numpy(sim), torch.from_numpy(obs)
    per_shot = relative_l2(sim_t, obs_t, per_shot=True).numpy()
    per_sample = relative_l2(sim_t, obs_t).numpy()
    return per_sample, per_shot


def qc_store(
    store: PredictionStore,
    source,
    threshold: float = DEFAULT_THRESHOLD,
    device: str = "auto",
    batch: int = 4,
    fit_amplitude: bool = False,
    ids: Sequence[str] | None = None,
    progress: bool = True,
) -> dict:
    """Forward-model the predictions of every sample in ``source`` and score them against its data.

    Args:
        store: predictions, (nz, nx) per sample in survey units.
        source: a ``SampleSource`` (test data is fine: no velocity needed) of the same survey.
        threshold: relative L2 misfit above which a sample is flagged.
        batch: samples simulated per deepwave call.
        ids: restrict to these sample ids (default: every source sample with a prediction).

    Returns:
        ``{"threshold", "n_flagged", "median_misfit", "missing", "samples": [{"id", "misfit",
        "per_shot", "flagged"}]}``, samples in source order.
    """
    import torch

    from seisinv.physics import simulate
    from seisinv.runtime import progress_bar

    survey: Survey = store.survey
    if survey.gather_shape != source.survey.gather_shape:
        raise DataError(
            f"{store.root}: predictions are for survey {survey.name!r} with gathers "
            f"{survey.gather_shape}, but the data have {source.survey.gather_shape}"
        )
    all_ids = list(source.ids)
    wanted = set(ids) if ids is not None else None
    chosen = [(i, sid) for i, sid in enumerate(all_ids) if wanted is None or sid in wanted]
    missing = [sid for _, sid in chosen if not store.has(sid)]
    todo = [(i, sid) for i, sid in chosen if store.has(sid)]
    samples = []
    with progress_bar(disable=not progress) as bar:
        task = bar.add_task("physics qc", total=len(todo))
        for start in range(0, len(todo), batch):
            part = todo[start : start + batch]
            velocity = np.stack([store.read(sid) for _, sid in part])
            observed = np.stack([source[i].gathers for i, _ in part])
            with torch.no_grad():
                simulated = simulate(velocity, survey, device=device).cpu().numpy()
            per_sample, per_shot = relative_misfit(simulated, observed, fit_amplitude)
            for (_, sid), misfit, shots in zip(part, per_sample, per_shot, strict=True):
                samples.append({
                    "id": sid,
                    "misfit": float(misfit),
                    "per_shot": [float(s) for s in shots],
                    "flagged": bool(misfit > threshold),
                })
            bar.advance(task, len(part))
    misfits = [s["misfit"] for s in samples]
    return {
        "threshold": threshold,
        "fit_amplitude": fit_amplitude,
        "n_flagged": sum(s["flagged"] for s in samples),
        "median_misfit": float(np.median(misfits)) if misfits else float("nan"),
        "missing": missing,
        "samples": samples,
    }


def write_qc(result: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``qc.json`` (everything) and ``qc.csv`` (id, misfit, flagged, per-shot misfits)."""
    out_dir = Path(out_dir)
    write_json(out_dir / "qc.json", result)
    n_shots = max((len(s["per_shot"]) for s in result["samples"]), default=0)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "misfit", "flagged"] + [f"shot_{k}" for k in range(n_shots)])
    for s in result["samples"]:
        writer.writerow([s["id"], f"{s['misfit']:.6g}", int(s["flagged"])] +
                        [f"{m:.6g}" for m in s["per_shot"]])
    write_text(out_dir / "qc.csv", buffer.getvalue())
    return out_dir / "qc.json", out_dir / "qc.csv"
