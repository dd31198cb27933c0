"""A self-contained HTML report: metrics tables, training curves, sample maps, gathers and QC.

The report folder holds ``index.html`` and ``figures/*.png``; the page references the figures
by relative paths only, so the folder can be moved or zipped as a whole.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seisinv.evaluation import figures
from seisinv.evaluation.evaluate import Evaluation
from seisinv.evaluation.truth import TruthRecord
from seisinv.inference.store import PredictionStore
from seisinv.io import write_json, write_text

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
tr.best { background: #e7f6e7; font-weight: bold; } tr.flag { background: #fbe9e7; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.3em 0; }
.muted { color: #777; font-size: 0.9em; }
"""


@dataclass
class ReportInputs:
    """Everything a report can show; every field is optional except the output folder.

    Attributes:
        predictions: name -> PredictionStore, the first one is the main prediction.
        truth: id -> labelled sample, for true/error maps and metrics.
        evaluations: metrics of each prediction directory (computed by ``evaluate_store``).
        run_dir: a training run folder (its ``metrics.jsonl`` gives training curves).
        gathers: id -> (shots, time, receivers) records to show for the chosen samples.
        qc: the result dict of ``seisinv.evaluation.qc`` (``qc.json``).
        title: page title.
        n_samples: how many samples to draw (one per family first).
        notes: extra lines shown under the title (e.g. the demo's timings).
    """

    predictions: dict[str, PredictionStore] = field(default_factory=dict)
    truth: dict[str, TruthRecord] | None = None
    evaluations: list[Evaluation] = field(default_factory=list)
    run_dir: Path | None = None
    gathers: dict[str, np.ndarray] = field(default_factory=dict)
    qc: dict | None = None
    title: str = "seisinv report"
    n_samples: int = 3
    notes: list[str] = field(default_factory=list)


def choose_samples(ids: list[str], truth: dict[str, TruthRecord] | None, n: int) -> list[str]:
    """Up to ``n`` ids, one per family first (in family order), then the rest in id order."""
    if not truth:
        return ids[:n]
    labelled = [i for i in ids if i in truth]
    chosen: list[str] = []
    for family in sorted({truth[i].family or "" for i in labelled}):
        first = next(i for i in labelled if (truth[i].family or "") == family)
        chosen.append(first)
    chosen += [i for i in labelled if i not in chosen]
    return chosen[:n] if chosen else ids[:n]


def read_metrics_jsonl(path: Path) -> list[dict]:
    """Records of a training run's ``metrics.jsonl`` (lines that do not parse are skipped)."""
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _table(headers: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        css = f' class="{classes[i]}"' if classes and classes[i] else ""
        cells = "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _metrics_html(evaluations: list[Evaluation]) -> str:
    units = evaluations[0].units
    headers = ["predictions", "family", "n", f"MAE {units}", f"RMSE {units}", "MAPE %", "SSIM"]
    scored = [e for e in evaluations if e.overall.get("n")]
    best = min(scored, key=lambda e: e.overall["mae"]).name if scored else None
    rows, classes = [], []
    for e in scored:
        groups = [("all", e.overall)] + (list(e.families.items()) if len(e.families) > 1 else [])
        for family, m in groups:
            rows.append([
                e.name if family == "all" else "", family, m["n"], f"{m['mae']:.4g}",
                f"{m['rmse']:.4g}", f"{100 * m['mape']:.2f}", f"{m['ssim']:.3f}",
            ])
            classes.append("best" if family == "all" and e.name == best else "")
    return _table(headers, rows, classes)


def _qc_html(qc: dict) -> str:
    samples = qc.get("samples", [])
    rows = [
        [s["id"], f"{s['misfit']:.3f}", "FLAG" if s["flagged"] else "ok"] for s in samples[:50]
    ]
    classes = ["flag" if s["flagged"] else "" for s in samples[:50]]
    summary = (
        f"<p>relative L2 misfit of simulated vs observed gathers; threshold "
        f"{qc.get('threshold')}: {qc.get('n_flagged', 0)} of {len(samples)} flagged; median "
        f"{qc.get('median_misfit', float('nan')):.3f}.</p>"
    )
    return summary + _table(["sample", "misfit", "status"], rows, classes)


def write_report(out_dir: str | Path, inputs: ReportInputs) -> Path:
    """Write ``out_dir/index.html`` and its figures; return the HTML path."""
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    sections: list[str] = []

    if inputs.evaluations:
        sections.append("<h2>Metrics</h2>" + _metrics_html(inputs.evaluations))
        bars = {e.name: e.overall["mae"] for e in inputs.evaluations if e.overall.get("n")}
        if bars:
            png = figures.metric_bars(bars, fig_dir / "mae.png", f"MAE ({inputs.evaluations[0].units})")
            sections.append(_img(png, out_dir, "MAE per prediction directory"))
        write_json(out_dir / "metrics.json", [e.to_dict() for e in inputs.evaluations])

    if inputs.run_dir is not None and (Path(inputs.run_dir) / "metrics.jsonl").exists():
        records = read_metrics_jsonl(Path(inputs.run_dir) / "metrics.jsonl")
        png = figures.training_curves(records, fig_dir / "training.png", title=Path(inputs.run_dir).name)
        if png is not None:
            sections.append("<h2>Training</h2>" + _img(png, out_dir, "training curves"))

    if inputs.predictions:
        name, store = next(iter(inputs.predictions.items()))
        chosen = choose_samples(store.ids(), inputs.truth, inputs.n_samples)
        parts = []
        for sample_id in chosen:
            record = (inputs.truth or {}).get(sample_id)
            family = f" ({record.family})" if record is not None and record.family else ""
            png = figures.velocity_comparison(
                store.survey,
                store.read(sample_id),
                fig_dir / f"velocity_{_safe(sample_id)}.png",
                true=None if record is None else record.velocity,
                spread=store.read_spread(sample_id),
                title=f"{name}: {sample_id}{family}",
            )
            parts.append(_img(png, out_dir, f"sample {sample_id}"))
            if sample_id in inputs.gathers:
                png = figures.gathers_figure(
                    store.survey, inputs.gathers[sample_id], fig_dir / f"gathers_{_safe(sample_id)}.png",
                    title=f"observed gathers: {sample_id}",
                )
                parts.append(_img(png, out_dir, f"gathers {sample_id}"))
        sections.append(f"<h2>Samples ({html.escape(name)})</h2>" + "".join(parts))

    if inputs.qc:
        sections.append("<h2>Physics check (no labels needed)</h2>" + _qc_html(inputs.qc))

    notes = "".join(f"<p class='muted'>{html.escape(n)}</p>" for n in inputs.notes)
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(inputs.title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(inputs.title)}</h1>{notes}"
        + "".join(sections)
        + "</body></html>\n"
    )
    index = out_dir / "index.html"
    write_text(index, page)
    return index


def _safe(sample_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in sample_id)


def _img(png: Path, root: Path, alt: str) -> str:
    return f"<img src='{html.escape(png.relative_to(root).as_posix())}' alt='{html.escape(alt)}'>"


def report_for(
    target: str | Path,
    truth: str | Path | None = None,
    predictions: list[str | Path] | None = None,
    data: str | Path | None = None,
    out: str | Path | None = None,
    n_samples: int = 3,
    run: str | Path | None = None,
    title: str | None = None,
    notes: list[str] | None = None,
) -> Path:
    """Build a report from paths, as ``seisinv report`` does.

    Args:
        target: a training run directory (training curves) or a prediction directory.
        truth: labelled dataset (or prediction directory) for true/error maps and metrics.
        predictions: further prediction directories (compared in the metrics table).
        data: dataset whose gathers are drawn for the shown samples.
        out: report folder (default ``TARGET/report``).
        n_samples: samples drawn.
        run: a training run directory whose curves are drawn (when ``target`` is a prediction
            directory).
        title, notes: page title and lines under it.

    Returns:
        The path of ``index.html``.
    """
    from seisinv.evaluation.evaluate import evaluate_store
    from seisinv.evaluation.truth import is_prediction_dir, load_truth

    target = Path(target)
    paths = [Path(p) for p in predictions or []]
    run_dir = Path(run) if run is not None else None
    if is_prediction_dir(target):
        paths.insert(0, target)
    elif (target / "metrics.jsonl").exists() or (target / "config.yaml").exists():
        run_dir = target
    else:
        from seisinv.errors import DataError

        raise DataError(f"{target}: neither a run directory (metrics.jsonl) nor a prediction "
                        "directory (manifest.json + velocity/)")
    stores = {p.name: PredictionStore(p) for p in paths}
    survey = next(iter(stores.values())).survey if stores else None
    records = load_truth(truth, survey) if truth is not None else None
    evaluations = [evaluate_store(s, list(records.values()), name) for name, s in stores.items()] if records else []
    qc = None
    if paths and (paths[0] / "qc.json").exists():
        qc = json.loads((paths[0] / "qc.json").read_text())
    gathers: dict[str, np.ndarray] = {}
    if data is not None and stores:
        from seisinv.data import open_dataset

        source = open_dataset(data, survey)
        first = next(iter(stores.values()))
        known = set(source.ids)
        for sample_id in choose_samples(first.ids(), records, n_samples):
            if sample_id in known:
                gathers[sample_id] = source[source.index_of(sample_id)].gathers
    inputs = ReportInputs(
        predictions=stores, truth=records, evaluations=evaluations, run_dir=run_dir,
        gathers=gathers, qc=qc, title=title or f"seisinv report: {target.name}",
        n_samples=n_samples, notes=notes or [],
    )
    return write_report(out or target / "report", inputs)
