"""Score a prediction directory against true velocities, per family and overall."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from seisinv.evaluation.truth import TruthRecord
from seisinv.inference.store import PredictionStore
from seisinv.metrics import aggregate, sample_metrics

UNKNOWN_FAMILY = "unknown"


@dataclass
class Evaluation:
    """Metrics of one prediction directory.

    Attributes:
        name: label used in tables (the directory name).
        units: velocity units of MAE and RMSE (the survey's).
        per_sample: one dict per scored sample: id, family, mae, mse, rmse, mape, ssim.
        overall: :func:`seisinv.metrics.aggregate` over all scored samples.
        families: the same per family (samples without a family count as "unknown").
        missing: ids in the truth without a prediction (not scored).
    """

    name: str
    units: str
    per_sample: list[dict] = field(default_factory=list)
    overall: dict = field(default_factory=dict)
    families: dict[str, dict] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "units": self.units,
            "overall": self.overall,
            "families": self.families,
            "missing": self.missing,
            "per_sample": self.per_sample,
        }


def evaluate_store(
    store: PredictionStore,
    truth: Iterable[TruthRecord],
    name: str | None = None,
    progress: bool = False,
) -> Evaluation:
    """Compute MAE, RMSE (survey units), MAPE (Speed & Structure's fraction) and SSIM.

    Args:
        store: the predictions, (nz, nx) per sample in survey units.
        truth: labelled samples (see ``seisinv.evaluation.truth.iter_truth``).
        name: label for tables (default: the directory name).
        progress: show a progress bar.
    """
    from seisinv.runtime import progress_bar

    survey = store.survey
    result = Evaluation(name=name or store.root.name, units=survey.units)
    truth = list(truth) if not isinstance(truth, list) else truth
    with progress_bar(disable=not progress) as bar:
        task = bar.add_task(f"evaluate {result.name}", total=len(truth))
        for record in truth:
            bar.advance(task)
            if not store.has(record.id):
                result.missing.append(record.id)
                continue
            scores = sample_metrics(store.read(record.id), record.velocity, survey.vmin, survey.vmax)
            result.per_sample.append(
                {"id": record.id, "family": record.family or UNKNOWN_FAMILY, **scores}
            )
    result.overall = aggregate(result.per_sample)
    for family in sorted({r["family"] for r in result.per_sample}):
        result.families[family] = aggregate([r for r in result.per_sample if r["family"] == family])
    return result


def metrics_table(evaluations: list[Evaluation], title: str = "metrics", per_family: bool = True):
    """A rich Table: one row per prediction directory (and per family), lowest MAE marked."""
    from rich.table import Table

    table = Table(title=title)
    units = evaluations[0].units if evaluations else ""
    for column in ("predictions", "family", "n", f"MAE {units}", f"RMSE {units}", "MAPE %", "SSIM"):
        table.add_column(column, justify="left" if column in ("predictions", "family") else "right")
    scored = [e for e in evaluations if e.overall.get("n")]
    best = min(scored, key=lambda e: e.overall["mae"]).name if scored else None

    def row(label: str, family: str, m: dict, style: str | None = None) -> None:
        if not m.get("n"):
            table.add_row(label, family, "0", "-", "-", "-", "-", style=style)
            return
        table.add_row(
            label, family, str(m["n"]), f"{m['mae']:.4g}", f"{m['rmse']:.4g}",
            f"{100 * m['mape']:.2f}", f"{m['ssim']:.3f}", style=style,
        )

    for evaluation in evaluations:
        row(evaluation.name, "all", evaluation.overall, "bold green" if evaluation.name == best else None)
        if per_family and len(evaluation.families) > 1:
            for family, m in evaluation.families.items():
                row("", family, m, "dim")
    return table


def metrics_markdown(evaluations: list[Evaluation]) -> str:
    """The overall metrics as a markdown table (for docs and the HTML report)."""
    units = evaluations[0].units if evaluations else ""
    lines = [
        f"| predictions | n | MAE {units} | RMSE {units} | MAPE % | SSIM |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for e in evaluations:
        m = e.overall
        if m.get("n"):
            lines.append(
                f"| {e.name} | {m['n']} | {m['mae']:.4g} | {m['rmse']:.4g} | "
                f"{100 * m['mape']:.2f} | {m['ssim']:.3f} |"
            )
    return "\n".join(lines)
