"""Chains of gather transforms named in configs: ``build_pipeline([{"name": ..., **params}], survey)``.

Example (YAML in a training config)::

    transforms:
      - {name: resample, length: 2048}
      - {name: scale, factor: 1.0e4}
      - {name: zscore}
      - {name: clip, low: -5, high: 5}
      - {name: pad_receivers, to: 32}

Steps (see ``seisinv.data.transforms`` for shapes):

=====================  ====================================  =========================================
name                   params                                effect on (S, T, R)
=====================  ====================================  =========================================
``scale``              ``factor``                            values x factor
``zscore``             (fitted: ``mean``, ``std``)           (x - mean) / std, statistics from ``fit``
``clip``               ``low``, ``high``                     values clipped
``resample``           ``length``                            (S, length, R), anti-aliased
``crop``               ``length``, ``start=0``               (S, length, R)
``time_to_width``      ``chunks``                            (S, T / chunks, chunks * R)
``pad_receivers``      ``to``, ``mode="constant"``           (S, T, to)
``shots_side_by_side`` --                                    (1, T, S * R)
``resample``           ``method="linear"`` / ``"area"``      as scipy interp1d (linear) / torch area
                                                             interpolation; not anti-aliased
``zscore``             ``mean``, ``std`` (fixed)             (x - mean) / std with given statistics
                                                             (not fitted)
``trim_time``          ``end``                               (S, T - end, R)
``fold_time``          ``rows``                              (S, rows, R * T / rows), seed-001 layout
``source_slots``       ``position``, ``shots``               (S + 1, T, R): zero slot inserted at
                                                             ``position`` (inputs already holding
                                                             S + 1 slots pass unchanged)
=====================  ====================================  =========================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from seisinv.errors import ConfigError, DataError
from seisinv.registry import Registry
from seisinv.survey import Survey, survey_from_dict

from . import transforms as T


@dataclass
class Step:
    """One named transform with its parameters.

    Attributes:
        name: registry name.
        params: the parameters from the config (fitted statistics excluded).
        apply: ``(gathers, stats) -> gathers`` on (..., S, T, R) float32 arrays.
        shape: ``(S, T, R) -> (S', T', R')`` output shape of one sample.
        fitted: True when the step needs dataset statistics (``Pipeline.fit``).
        stats: fitted statistics (``{"mean": .., "std": ..}``), empty until fitted.
    """

    name: str
    params: dict
    apply: Callable[[np.ndarray, dict], np.ndarray]
    shape: Callable[[tuple[int, int, int]], tuple[int, int, int]]
    fitted: bool = False
    stats: dict = field(default_factory=dict)


STEPS: Registry[Callable[..., Step]] = Registry("transform")


def _same(shape):
    return shape


@STEPS.register("scale")
def _scale(factor: float) -> Step:
    return Step("scale", {"factor": factor}, lambda g, s: T.scale_amplitude(g, factor), _same)


@STEPS.register("zscore")
def _zscore(mean: float | None = None, std: float | None = None) -> Step:
    if (mean is None) != (std is None):
        raise ConfigError("transform zscore: give both mean and std (fixed statistics) or neither "
                          "(fitted on the training data)")
    if mean is None:
        return Step("zscore", {}, lambda g, s: T.zscore(g, s["mean"], s["std"]), _same,
                    fitted=True)
    return Step("zscore", {"mean": mean, "std": std}, lambda g, s: T.zscore(g, mean, std), _same)


@STEPS.register("clip")
def _clip(low: float, high: float) -> Step:
    if low >= high:
        raise ConfigError(f"transform clip: low ({low}) must be below high ({high})")
    return Step("clip", {"low": low, "high": high}, lambda g, s: T.clip(g, low, high), _same)


RESAMPLE_METHODS = ("sinc", "linear", "area")


@STEPS.register("resample")
def _resample(length: int, method: str = "sinc") -> Step:
    if method not in RESAMPLE_METHODS:
        raise ConfigError(f"transform resample: method {method!r}; use one of {RESAMPLE_METHODS}")
    function = {"sinc": T.resample_time, "linear": T.resample_time_linear,
                "area": T.resample_time_area}[method]
    # The default is not recorded, so pipelines saved before ``method`` existed stay identical.
    params = {"length": length} if method == "sinc" else {"length": length, "method": method}
    return Step("resample", params, lambda g, s: function(g, length),
                lambda shape: (shape[0], length, shape[2]))


@STEPS.register("trim_time")
def _trim_time(end: int) -> Step:
    return Step("trim_time", {"end": end}, lambda g, s: T.trim_time(g, end),
                lambda shape: (shape[0], shape[1] - end, shape[2]))


@STEPS.register("fold_time")
def _fold_time(rows: int) -> Step:
    return Step("fold_time", {"rows": rows}, lambda g, s: T.fold_time(g, rows),
                lambda shape: (shape[0], rows, shape[2] * (shape[1] // rows)))


@STEPS.register("source_slots")
def _source_slots(position: int, shots: int) -> Step:
    def apply(gathers, stats):
        if gathers.shape[-3] == shots + 1:  # already slotted (flip_source_slots)
            return T._float32(gathers)
        if gathers.shape[-3] != shots:
            raise DataError(f"source_slots: {gathers.shape[-3]} shots; expected {shots} (or "
                            f"{shots + 1} slots)")
        return T.insert_zero_shot(gathers, position)

    return Step("source_slots", {"position": position, "shots": shots}, apply,
                lambda shape: (shots + 1, shape[1], shape[2]))


@STEPS.register("crop")
def _crop(length: int, start: int = 0) -> Step:
    return Step("crop", {"length": length, "start": start},
                lambda g, s: T.crop_time(g, start, length),
                lambda shape: (shape[0], length, shape[2]))


@STEPS.register("time_to_width")
def _time_to_width(chunks: int) -> Step:
    return Step("time_to_width", {"chunks": chunks}, lambda g, s: T.time_to_width(g, chunks),
                lambda shape: (shape[0], shape[1] // chunks, shape[2] * chunks))


@STEPS.register("pad_receivers")
def _pad_receivers(to: int, mode: str = "constant") -> Step:
    return Step("pad_receivers", {"to": to, "mode": mode},
                lambda g, s: T.pad_receivers(g, to, mode),
                lambda shape: (shape[0], shape[1], to))


@STEPS.register("shots_side_by_side")
def _shots_side_by_side() -> Step:
    return Step("shots_side_by_side", {}, lambda g, s: T.shots_side_by_side(g),
                lambda shape: (1, shape[1], shape[0] * shape[2]))


def _build_step(spec: dict, position: int) -> Step:
    if not isinstance(spec, dict) or "name" not in spec:
        raise ConfigError(f"transforms[{position}]: expected a mapping with a 'name', got {spec!r}")
    params = {k: v for k, v in spec.items() if k not in ("name", "stats")}
    builder = STEPS.get(spec["name"])
    try:
        step = builder(**params)
    except TypeError as exc:
        raise ConfigError(f"transforms[{position}] ({spec['name']}): bad parameters ({exc})") from None
    if "stats" in spec:
        step.stats = dict(spec["stats"])
    return step


class Pipeline:
    """An ordered chain of gather transforms for one survey.

    ``pipeline(gathers)`` maps ``(..., S, T, R)`` numpy arrays or torch tensors (leading batch axes
    allowed) to float32 of the same kind, shape ``(..., *pipeline.output_shape())``. Torch tensors
    are transformed on the CPU and returned on their device (this is a data-loading step).
    """

    def __init__(self, steps: Sequence[Step], survey: Survey) -> None:
        self.steps = list(steps)
        self.survey = survey

    def __repr__(self) -> str:
        return f"Pipeline({[s.name for s in self.steps]}, survey={self.survey.name!r})"

    def __reduce__(self):
        # Steps hold closures; pickle (DataLoader workers under spawn) through the plain state.
        return (Pipeline.from_state, (self.state(),))

    @property
    def is_fitted(self) -> bool:
        return all(step.stats for step in self.steps if step.fitted)

    def output_shape(self, survey: Survey | None = None) -> tuple[int, int, int]:
        """(S', T', R') of one transformed sample of ``survey`` (default: the pipeline's)."""
        shape = (survey or self.survey).gather_shape
        for step in self.steps:
            shape = step.shape(shape)
        return tuple(shape)

    def __call__(self, gathers):
        if isinstance(gathers, np.ndarray):
            return self._apply(gathers)
        import torch

        if not isinstance(gathers, torch.Tensor):
            raise DataError(f"pipeline: expected a numpy array or torch tensor, got {type(gathers)}")
        out = self._apply(gathers.detach().cpu().numpy())
        return torch.from_numpy(out).to(gathers.device)

    def _apply(self, gathers: np.ndarray, upto: int | None = None) -> np.ndarray:
        if gathers.ndim < 3:
            raise DataError(f"pipeline: gathers of shape {gathers.shape}; expected "
                            "(..., shots, time, receivers)")
        out = np.asarray(gathers, dtype=np.float32)
        for step in self.steps[:upto]:
            if step.fitted and not step.stats:
                raise DataError(f"pipeline step {step.name!r} needs dataset statistics: call "
                                "Pipeline.fit(source) or restore them with Pipeline.from_state")
            out = step.apply(out, step.stats)
        return out

    def fit(self, source, max_samples: int | None = 256) -> Pipeline:
        """Compute the statistics of every fitted step (z-score mean/std) from ``source``.

        Each fitted step sees the output of the steps before it. Uses up to ``max_samples``
        samples spread evenly over the source (all when None). Returns ``self``.
        """
        n = len(source)
        if n == 0:
            raise DataError("pipeline fit: the dataset is empty")
        count = n if max_samples is None else min(n, max_samples)
        indices = np.unique(np.linspace(0, n - 1, count).round().astype(int))
        for position, step in enumerate(self.steps):
            if not step.fitted:
                continue
            total = total_sq = 0.0
            size = 0
            for i in indices:
                values = self._apply(source[int(i)].gathers, upto=position).astype(np.float64)
                total += values.sum()
                total_sq += np.square(values).sum()
                size += values.size
            mean = total / size
            std = float(np.sqrt(max(total_sq / size - mean**2, 0.0)))
            step.stats = {"mean": float(mean), "std": std if std > 0 else 1.0}
        return self

    def state(self) -> dict:
        """Plain-Python steps, fitted statistics and survey, to save beside a run (YAML/JSON)."""
        steps = []
        for step in self.steps:
            spec = {"name": step.name, **step.params}
            if step.stats:
                spec["stats"] = dict(step.stats)
            steps.append(spec)
        return {"steps": steps, "survey": self.survey.to_dict()}

    @classmethod
    def from_state(cls, state: dict, survey: Survey | None = None) -> Pipeline:
        """Rebuild a pipeline (with its fitted statistics) from ``state()``."""
        if survey is None:
            if "survey" not in state:
                raise ConfigError("pipeline state has no 'survey'; pass survey=")
            survey = survey_from_dict(state["survey"], source="pipeline state")
        return cls([_build_step(spec, i) for i, spec in enumerate(state.get("steps", []))],
                   survey)


def build_pipeline(steps: Sequence[dict] | None, survey: Survey) -> Pipeline:
    """Build a ``Pipeline`` from config entries ``{"name": <step>, **params}`` (see module docs).

    Raises:
        ConfigError / SeisinvError: unknown step name or bad parameters (the message names them).
    """
    return Pipeline([_build_step(spec, i) for i, spec in enumerate(steps or [])], survey)
