"""Experiments: a challenge solution as one resumable command (``seisinv experiment``).

An experiment (YAML, packaged ones by name in ``seisinv/configs/experiments/``) chains stages:
optional data generation, the fold split, N training runs (a recipe plus overrides per run),
prediction of the test set per run with its TTA, the ensemble, optional FWI refinement and the
challenge submission. See ``docs/experiments.md``.

Python API::

    from seisinv.experiment import load_experiment, run_experiment

    spec = load_experiment("ss-caformer-unet", size="tiny", overrides=["train.steps=2"])
    result = run_experiment(spec, ["data/train"], "data/test", "out/caformer", size="tiny")
    result.submission, result.scores
"""

from seisinv.experiment.runner import ExperimentResult, RunScore, run_experiment
from seisinv.experiment.spec import (
    ExperimentSpec,
    experiment_names,
    experiment_path,
    load_experiment,
    read_experiment,
    resolve_experiment,
)
from seisinv.experiment.stages import STAGES

__all__ = [
    "STAGES",
    "ExperimentResult",
    "ExperimentSpec",
    "RunScore",
    "experiment_names",
    "experiment_path",
    "load_experiment",
    "read_experiment",
    "resolve_experiment",
    "run_experiment",
]
