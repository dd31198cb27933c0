"""The ensemble stage as one call: members -> (fitted) plan -> families -> post-processing -> store.

``run_ensemble`` is what ``seisinv ensemble`` runs and what an experiment stage calls. The output
directory is an ordinary prediction directory (so it can be a member of another ensemble) plus
``ensemble.json``: the members, method, weights per family and the post-processing specs with
their fitted parameters, which ``plan=`` reapplies to other predictions of the same members (fit
on validation, apply to test). Families of test samples come from, in order: the labelled
``truth`` samples, a member's recorded ``predicted_families`` (a nested ensemble), and the family
classifier run on the members' mean prediction; the classifier's answers are written into the
output manifest (``info.predicted_families``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seisinv.errors import DataError, SeisinvError
from seisinv.inference.ensemble import (
    EnsemblePlan,
    check_members,
    classify_families,
    combine,
    ensemble_stores,
    fit_plan,
    get_method,
    read_member,
)
from seisinv.inference.postprocess import FITTERS, build_chain, fit_specs
from seisinv.inference.store import STORE_NAMES, PredictionStore
from seisinv.outdir import Writes

PLAN_FILE = "ensemble.json"
# What ``seisinv ensemble`` writes into its output (``seisinv.outdir.Writes``).
ENSEMBLE_WRITES = Writes(PLAN_FILE, (*STORE_NAMES, PLAN_FILE))


@dataclass
class EnsembleResult:
    """What ``run_ensemble`` did: samples written, the plan, post specs and predicted families."""

    written: int
    plan: EnsemblePlan
    post: list[dict]
    predicted_families: dict[str, str] = field(default_factory=dict)


def read_plan(path: str | Path) -> dict:
    """An ``ensemble.json`` written by an earlier ensemble (``weights``, ``method``, ``post``).

    Raises:
        SeisinvError: unreadable, or not an ensemble plan.
    """
    try:
        plan = json.loads(Path(path).read_text())
        plan["weights"]  # noqa: B018 - presence check
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SeisinvError(f"plan {path}: not an ensemble.json with 'weights' ({exc})") from None
    return plan


def _needs_fit(specs: Sequence[dict]) -> bool:
    return any(s["name"] in FITTERS and "offset" not in s for s in specs)


def run_ensemble(
    members: Sequence[str | Path],
    out: str | Path,
    method: str = "mean",
    weights: Sequence[float] | None = None,
    truth: dict | None = None,
    plan: str | Path | None = None,
    metric: str = "mae",
    per_family: bool = False,
    classifier=None,
    post: Sequence[dict] = (),
    fit_options: dict | None = None,
    progress: bool = True,
) -> EnsembleResult:
    """Combine prediction directories into ``out`` (resumable; another ensemble there is refused).

    Args:
        members: prediction directories (ensemble outputs included).
        out: the output prediction directory; must not be one of the members.
        method: a name of ``seisinv.inference.ensemble.METHODS``.
        weights: fixed member weights (weighted methods), e.g. ``[0.6, 0.4]``.
        truth: labelled validation samples ``id -> record`` with ``velocity`` (nz, nx) and
            ``family`` (``seisinv.evaluation.truth.load_truth``) to fit weights and fitted
            post-processing (``bias``) on; their families select per-family weights.
        plan: an earlier ``ensemble.json`` whose weights (weighted methods) and post specs (when
            ``post`` is empty) are reapplied.
        metric: what weight fits minimise ("mae", "mse", "mape").
        per_family: fit one weight vector per family (with ``truth``) and apply per-family
            weights; with ``classifier``, test samples get their family from it.
        classifier: a family classifier module (``families`` + ``forward(velocity) -> logits``),
            or None.
        post: post-processing specs (``seisinv.inference.postprocess.parse_post``), applied to
            each combined map in order.
        fit_options: keyword arguments of the weight fit (``hill_climb``: ``init``,
            ``patience``, ``max_rounds``).

    Raises:
        SeisinvError: inconsistent arguments (named by their Python names); DataError for members
            that disagree or hold NaN.
    """
    from seisinv.io import write_json

    spec = get_method(method)
    given = [name for name, value in (("weights", weights), ("truth", truth), ("plan", plan))
             if value is not None]
    if spec.needs_weights and len(given) != 1:
        raise SeisinvError(f"method {method!r} needs exactly one of weights=, truth= or plan=")
    if not spec.needs_weights and "weights" in given:
        raise SeisinvError(f"weights= only apply to weighted methods, not {method!r}")
    post = [dict(s) for s in post]
    if truth is not None and not spec.needs_weights and not _needs_fit(post):
        raise SeisinvError(f"truth= has nothing to fit for method {method!r} without a fitted "
                           "post-processing step (bias)")
    if classifier is not None and not per_family:
        raise SeisinvError("classifier= selects per-family weights; it needs per_family=True")
    out = Path(out)
    if any(Path(m).resolve() == out.resolve() for m in members):
        raise SeisinvError(f"out {out}: is one of the members; choose another folder")
    stores = [PredictionStore(m) for m in members]
    check_members(stores)
    survey = stores[0].survey

    result_plan = EnsemblePlan(method=method)
    families: dict[str, str | None] = {}
    if plan is not None:
        saved = read_plan(plan)
        if spec.needs_weights:
            result_plan.weights = saved["weights"]
            if not result_plan.weights:
                raise SeisinvError(f"plan {plan}: holds no weights (was it a mean/median "
                                   "ensemble?)")
        post = post or list(saved.get("post", []))
    elif weights is not None:
        result_plan.weights = {"*": [float(w) for w in weights]}
    if truth is not None:
        families = {k: r.family for k, r in truth.items()}
        if spec.fit is not None:
            result_plan = fit_plan(stores, {k: (r.velocity, r.family) for k, r in truth.items()},
                                   metric=metric, per_family=per_family, method=method,
                                   options=fit_options)
    if _needs_fit(post):
        if truth is None:
            raise SeisinvError("post-processing 'bias' needs validation data: give truth= (or a "
                               "plan= with a fitted bias)")
        ids = sorted(set(truth).intersection(stores[0].ids()))
        if not ids:
            raise DataError("no truth sample is predicted by the members; cannot fit the "
                            "post-processing")
        combined = np.stack([combine(np.stack([read_member(s, i) for s in stores]), method,
                                     result_plan.weights_for(families.get(i)))[0] for i in ids])
        post = fit_specs(post, combined, np.stack([truth[i].velocity for i in ids]), survey,
                         [families.get(i) for i in ids])
    chain = build_chain(post, survey)

    for store in stores:  # a nested ensemble passes on its classifier's families
        for sample_id, family in store.meta.get("info", {}).get("predicted_families", {}).items():
            families.setdefault(sample_id, family)
    predicted: dict[str, str] = {}
    if classifier is not None:
        unknown = [i for i in check_members(stores) if not families.get(i)]
        predicted = classify_families(stores, classifier, unknown)
        families.update(predicted)

    info = {"members": [str(m) for m in members], **result_plan.to_dict(), "post": post}
    if fit_options:
        info["fit_options"] = dict(fit_options)
    if predicted:
        info["predicted_families"] = predicted
    out_store = PredictionStore(out, survey, source=f"ensemble {method} of {len(stores)}",
                                info=info)
    out_store.refuse_other_settings(info, "two ensembles")
    write_json(out / PLAN_FILE, {k: v for k, v in info.items() if k != "predicted_families"})
    written = ensemble_stores(stores, out_store, result_plan, families, progress=progress,
                              post=chain if post else None)
    return EnsembleResult(written, result_plan, post, predicted)
