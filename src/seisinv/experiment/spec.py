"""The typed description of an experiment, loaded from YAML (packaged ones by name).

An experiment chains the stages a challenge solution consists of (see ``seisinv.experiment``):

.. code-block:: yaml

    name: ss-caformer-unet
    submission: speed-structure        # or kaggle-gwi
    recipe: ss-caformer-unet           # a packaged training recipe or a YAML path
    train: {epochs: 20}                # nested overrides of the recipe, every run
    generate: {families: [mix], n: 20000, mix_from: train, options: {flips: false}}
    folds: {rule: hash, k: 20, seed: 0}
    runs:
      - {name: seed43-fold1, seed: 43, val_fold: 1}
    predict: {tta: [flip], batch: 4}
    ensemble: {method: mean}
    sizes:
      tiny: {train: {steps: 2}}        # deep-merged into the experiment for --size tiny

``sizes.<size>`` is merged into the experiment before validation; ``--set key=value`` overrides
apply last (e.g. ``--set train.epochs=1``, ``--set ensemble.method=median``).
"""

from __future__ import annotations

import copy
import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from seisinv.errors import ConfigError

Size = Literal["tiny", "full"]
SIZES: tuple[str, ...] = ("tiny", "full")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenerateStage(_Section):
    """Synthetic training data made before training (``seisinv generate``), train-only.

    Attributes:
        families: velocity families (``seisinv.geology.FAMILIES``).
        n: samples to generate (0 skips the stage).
        seed: generation seed.
        mix_from: ``"train"`` (the ``--train`` folders' velocity maps are what ``mix`` blends),
            a path, or None (fresh maps).
        options: family options, e.g. ``{flips: false}`` for ``mix`` blends without the random
            flips; option ``k`` reaches the generator as ``GenerateSpec.<family>_k`` (``mix_flips``,
            ``mix_weight``); options the generator lacks are reported in the log and skipped.
        per_file: samples per chunk.
    """

    families: list[str] = Field(default_factory=lambda: ["mix"])
    n: int = Field(0, ge=0)
    seed: int = Field(0, ge=0)
    mix_from: str | None = "train"
    options: dict[str, Any] = Field(default_factory=dict)
    per_file: int = Field(500, ge=1)


class FoldRule(_Section):
    """How the training pool is split into validation folds (written to ``OUT/folds.csv``).

    Attributes:
        rule: ``"hash"`` (``seisinv.data.folds.assign_folds``: stable hash of seed and id),
            ``"kfold"`` (scikit-learn ``KFold(k, shuffle=True, random_state=seed)`` on the
            real samples in id order, reproduced exactly with numpy), or ``"file"`` (a folds CSV).
        k: number of folds.
        seed: seed of the assignment.
        first: fold only the first ``first`` real samples (in id order); later ones always train
            (seed 001: the 2999 samples of the first data release). None: all.
        file: the folds CSV for ``rule: file`` (``id,fold`` rows; -1 = train only).
    """

    rule: Literal["hash", "kfold", "file"] = "hash"
    k: int = Field(5, ge=2)
    seed: int = 0
    first: int | None = Field(None, ge=1)
    file: str | None = None

    @model_validator(mode="after")
    def _file_given(self) -> FoldRule:
        if (self.rule == "file") != (self.file is not None):
            raise ValueError("folds.file is needed exactly when folds.rule is 'file'")
        return self


class RunSpec(_Section):
    """One trained model.

    Attributes:
        name: run name (directory ``OUT/runs/<name>``, prediction ``OUT/predictions/<name>``).
        seed: training seed.
        val_fold: validation fold (None: train on every sample, no validation).
        family: model family label, for per-family ensembles and the summary table.
        train: nested overrides of the recipe for this run only (after the experiment's).
        recipe: this run's own training recipe (e.g. ``gwi-family-classifier``); the
            experiment's ``train`` overrides then do not apply, only the run's own.
        init_from: start from the weights of an earlier run of this experiment,
            ``RUN[:best|last]`` (``TrainConfig.init_from`` on ``OUT/runs/RUN``; new optimiser
            state): fine-tuning stages, image-size stages, a model split into branches.
        member: the run is predicted and ensembled; False for runs that only feed others (a
            pretraining stage, the family classifier).
        tta: this run's own test-time augmentation (default: ``predict.tta``), e.g.
            ``[identity:0, flip]`` for a model trained on flipped data only.
    """

    name: str
    seed: int = 0
    val_fold: int | None = Field(0, ge=0)
    family: str = ""
    train: dict[str, Any] = Field(default_factory=dict)
    recipe: str | None = None
    init_from: str | None = None
    member: bool = True
    tta: list[str] | None = None

    @property
    def init_run(self) -> str | None:
        """The run named by ``init_from`` (without ``:best``/``:last``)."""
        return None if self.init_from is None else self.init_from.split(":")[0]


Checkpoint = Literal["best", "last"]


class PredictStage(_Section):
    """Prediction of the test set by each run (``seisinv.inference.predict``).

    Attributes:
        tta: test-time augmentations (``seisinv.inference.predict.TTA``), averaged per run.
        batch: samples per model call.
        checkpoint: "best" (falls back to last without validation), "last", or a blend of both
            with fixed weights, e.g. ``{last: 0.6, best: 0.4}`` (Kaggle GWI 4th place): each
            checkpoint predicts into ``<run>@<checkpoint>`` and their weighted mean
            (``seisinv.inference.ensemble_job.run_ensemble``) is the run's prediction.
        history: with a blend, each kind is the mean of the newest ``history`` stretches'
            checkpoints of that kind (``checkpoints/history/stretch-NNN/{best,last}``, one per
            ``train`` call of a resumed run); 0: the run's own ``best`` / ``last``.
    """

    tta: list[str] = Field(default_factory=list)
    batch: int = Field(4, ge=1)
    checkpoint: Checkpoint | dict[Checkpoint, float] = "best"
    history: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _blend(self) -> PredictStage:
        if isinstance(self.checkpoint, dict):
            weights = list(self.checkpoint.values())
            if not weights or min(weights) < 0 or sum(weights) <= 0:
                raise ValueError("checkpoint: blend weights must be non-negative, not all zero")
        elif self.history:
            raise ValueError("history needs a checkpoint blend, e.g. checkpoint: {last: 1.0}")
        return self


class EnsembleStage(_Section):
    """Combination of the runs' predictions (``seisinv.inference.ensemble``).

    Attributes:
        method: a method name of ``seisinv.inference.ensemble.METHODS`` ("mean", "median",
            "weighted", "hill_climb", and any added there).
        weights: for "weighted": one weight per member run (in ``runs`` order) or a mapping from
            run name to weight (missing runs weigh 0). None with a weighted method
            ("weighted", "hill_climb"): the weights are fitted on the validation fold the member
            runs share (the ``validate`` stage's predictions, ``OUT/validation/ensemble/
            ensemble.json``) and applied to the test predictions.
        metric: what a weight fit minimises ("mae", "mse", "mape").
        fit_options: keyword arguments of the fit (``hill_climb``: ``init``, ``patience``,
            ``max_rounds``).
        weights_per_family: fit one weight vector per velocity family on validation (families
            with fewer than 3 validation samples use the global weights); test samples get
            their family from ``classifier``.
        classifier: the run (``member: false``, a ``family_classifier`` model) that names each
            test sample's family from the members' mean prediction
            (``seisinv ensemble --per-family --classifier``).
        per_family: first combine the runs of each ``family`` label with ``method``, then the
            family results with ``family_method`` (fixed weights only).
        family_method: how the family results are combined ("mean" or "median").
    """

    method: str = "mean"
    weights: list[float] | dict[str, float] | None = None
    metric: Literal["mae", "mse", "mape"] = "mae"
    fit_options: dict[str, Any] = Field(default_factory=dict)
    weights_per_family: bool = False
    classifier: str | None = None
    per_family: bool = False
    family_method: str = "mean"

    @property
    def fitted(self) -> bool:
        """The weights are fitted on the validation fold (a weighted method, none given)."""
        from seisinv.inference.ensemble import METHODS

        method = METHODS.get(self.method)
        return method is not None and method.fit is not None and self.weights is None


class FwiStage(_Section):
    """Optional FWI refinement of the ensemble (``seisinv.fwi.run_fwi``); the submission then
    uses the refined maps.

    Attributes:
        config: ``seisinv.fwi.config.FwiConfig`` fields.
        limit: refine only the first ``limit`` test samples (others keep the ensemble's maps).
        simulation_coarsen: see ``run_fwi``.
    """

    config: dict[str, Any] = Field(default_factory=dict)
    limit: int | None = Field(None, ge=1)
    simulation_coarsen: int | None = Field(None, ge=1)


class PseudoLabelStage(_Section):
    """Pseudo-labelling (stage ``pseudo_label``): the ensemble's test-set maps become training
    samples (``OUT/pseudo/round-K``, training only, never validation) and every run is trained
    again on the pool plus them, ``rounds`` times.

    Attributes:
        rounds: pseudo-labelling rounds (0: the stage does nothing).
    """

    rounds: int = Field(1, ge=0)


class ExperimentSpec(_Section):
    """A whole experiment; see the module docstring and ``docs/experiments.md``.

    Attributes:
        name: experiment name.
        description: one line for ``seisinv experiment list``.
        submission: challenge format (``seisinv.inference.submission.FORMATS``).
        recipe: the training recipe every run starts from (packaged name or YAML path).
        survey: survey preset or YAML path for every run (None: the recipe's).
        train: nested overrides of the recipe for every run.
        generate, folds, runs, predict, ensemble, fwi: the stages' settings.
        postprocess: ``seisinv.inference.postprocess`` specs (``{name: clip}``, ...) applied to
            every map the submission stage writes.
        pseudo_label: the ``pseudo_label`` stage's settings (None: the stage does nothing).
        stages: stage names run in order (``seisinv.experiment.stages.STAGES``).
    """

    name: str
    description: str = ""
    submission: Literal["speed-structure", "kaggle-gwi"] = "speed-structure"
    recipe: str
    survey: str | None = None
    train: dict[str, Any] = Field(default_factory=dict)
    generate: GenerateStage | None = None
    folds: FoldRule = Field(default_factory=FoldRule)
    runs: list[RunSpec]
    predict: PredictStage = Field(default_factory=PredictStage)
    ensemble: EnsembleStage = Field(default_factory=EnsembleStage)
    fwi: FwiStage | None = None
    postprocess: list[dict[str, Any]] = Field(default_factory=list)
    pseudo_label: PseudoLabelStage | None = None
    stages: list[str] = Field(
        default_factory=lambda: ["generate", "folds", "train", "predict", "validate",
                                 "ensemble", "fwi", "submission"]
    )

    @model_validator(mode="after")
    def _check(self) -> ExperimentSpec:
        if not self.runs:
            raise ValueError("runs: at least one run is needed")
        names = [run.name for run in self.runs]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"runs: duplicated run names {duplicated}")
        bad = [n for n in names if not n or "/" in n or n.startswith(".")]
        if bad:
            raise ValueError(f"runs: names {bad} cannot be directory names")
        for index, run in enumerate(self.runs):
            if run.val_fold is not None and run.val_fold >= self.folds.k:
                raise ValueError(f"runs[{run.name}].val_fold {run.val_fold} must be below "
                                 f"folds.k={self.folds.k}")
            if run.init_from is not None:
                earlier = names[:index]
                which = run.init_from.partition(":")[2]
                if run.init_run not in earlier or which not in ("", "best", "last"):
                    raise ValueError(f"runs[{run.name}].init_from {run.init_from!r}: name an "
                                     f"earlier run as RUN[:best|last] (earlier: {earlier})")
        members = self.members
        if not members:
            raise ValueError("runs: at least one run must be a member (member: true)")
        self._check_ensemble(members)
        return self

    def _check_ensemble(self, members: list[RunSpec]) -> None:
        ensemble = self.ensemble
        if ensemble.classifier is not None:
            runs = {run.name: run for run in self.runs}
            if ensemble.classifier not in runs or runs[ensemble.classifier].member:
                raise ValueError(f"ensemble.classifier {ensemble.classifier!r}: name a run with "
                                 "member: false (a family_classifier)")
            if not ensemble.weights_per_family:
                raise ValueError("ensemble.classifier selects per-family weights; set "
                                 "ensemble.weights_per_family: true")
        if ensemble.weights_per_family and not ensemble.fitted:
            raise ValueError("ensemble.weights_per_family: weights per family are fitted on "
                             "validation; use a weighted method without fixed weights")
        if ensemble.fitted:
            if ensemble.per_family:
                raise ValueError("ensemble.per_family groups runs with fixed weights; it cannot "
                                 f"be combined with weights fitted by {ensemble.method!r}")
            folds = {run.val_fold for run in members}
            if len(folds) != 1 or None in folds:
                raise ValueError(f"ensemble.method {ensemble.method!r} without weights fits them "
                                 "on the validation fold the member runs share; give every "
                                 "member the same val_fold")
            if ("validate" not in self.stages or "ensemble" not in self.stages
                    or self.stages.index("validate") > self.stages.index("ensemble")):
                raise ValueError("fitted ensemble weights need the 'validate' stage before "
                                 "'ensemble' in stages")

    @property
    def members(self) -> list[RunSpec]:
        """The runs that are predicted and ensembled (``member: true``), in order."""
        return [run for run in self.runs if run.member]

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")


# ---- loading -----------------------------------------------------------------------------
def _folder():
    return resources.files("seisinv") / "configs" / "experiments"


def experiment_names() -> list[str]:
    """Names of the packaged experiments (``seisinv/configs/experiments/<name>.yaml``)."""
    return sorted(p.name[:-5] for p in _folder().iterdir() if p.name.endswith(".yaml"))


def experiment_path(name_or_path: str | os.PathLike) -> Path:
    """The YAML file of a packaged experiment name, or the given YAML path.

    Raises:
        ConfigError: neither an existing YAML file nor a packaged name.
    """
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"{path}: experiment file not found")
        return path
    packaged = Path(str(_folder() / f"{name_or_path}.yaml"))
    if not packaged.is_file():
        raise ConfigError(f"unknown experiment {str(name_or_path)!r}: give a YAML path or one of "
                          f"{', '.join(experiment_names())}")
    return packaged


def deep_merge(base: dict, extra: dict) -> dict:
    """``base`` with ``extra`` merged in: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_experiment(name_or_path: str | os.PathLike) -> dict:
    """The raw mapping of an experiment YAML (sizes not yet applied)."""
    path = experiment_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not a readable YAML file ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def resolve_experiment(data: dict, size: str = "full", overrides: list[str] | tuple = (),
                       source: str = "experiment") -> ExperimentSpec:
    """Apply ``sizes[size]`` then ``--set`` overrides to a raw mapping and validate it.

    Raises:
        ConfigError: unknown size, bad override, or an invalid field (dotted key named).
    """
    from seisinv.training.config import apply_overrides

    if size not in SIZES:
        raise ConfigError(f"size {size!r}; use one of {', '.join(SIZES)}")
    data = dict(data)
    sizes = data.pop("sizes", {}) or {}
    if not isinstance(sizes, dict) or set(sizes) - set(SIZES):
        raise ConfigError(f"{source}: sizes must be a mapping with keys among {SIZES}")
    data = deep_merge(data, sizes.get(size) or {})
    data = apply_overrides(data, list(overrides))
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(experiment)"
            message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{where}: {message}")
        raise ConfigError(f"{source}: invalid experiment: {'; '.join(problems)}") from None


def load_experiment(name_or_path: str | os.PathLike, size: str = "full",
                    overrides: list[str] | tuple = ()) -> ExperimentSpec:
    """Load a packaged experiment by name or a YAML file, at ``size``, with ``--set`` overrides."""
    path = experiment_path(name_or_path)
    return resolve_experiment(read_experiment(path), size, overrides, source=str(path))
