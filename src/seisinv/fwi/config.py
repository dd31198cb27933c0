"""The typed settings of one FWI run (written beside its results as ``fwi_config.json``).

Every field carries its default and its help text here; ``seisinv fwi`` builds its options from
these fields (``seisinv.cli.fwi``), so this is the one place for both.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from seisinv.errors import ConfigError


def _flag(name: str) -> dict:
    """Field metadata: the CLI flag when it is not ``--`` + the field name with dashes."""
    return {"flag": name}


def cli_flag(name: str) -> str:
    """The ``seisinv fwi`` flag of config field ``name`` (``--smooth-grad`` for smooth_sigma)."""
    extra = FwiConfig.model_fields[name].json_schema_extra or {}
    return extra.get("flag", "--" + name.replace("_", "-"))


class FwiConfig(BaseModel):
    """Settings of a full-waveform inversion (each field's description is its documentation).

    Two optimisers: ``lbfgs`` (default) minimises ``misfit + prior`` in float64 with a batched
    L-BFGS and a strong-Wolfe line search per sample (``seisinv.fwi.quasi_newton``); ``adam`` is
    the first-order loop with gradient preconditioning (``seisinv.fwi.invert``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    iters: int = Field(30, ge=1, description=(
        "Iterations per sample, split evenly over the bands (L-BFGS: accepted iterations, each "
        "1-2 simulations; at most 2 iters + 5 simulations per band)."))
    optimizer: Literal["adam", "lbfgs"] = Field("lbfgs", description=(
        "lbfgs: float64 quasi-Newton with a prior, samples batched, each with its own line "
        "search; adam: first-order with preconditioning (no prior)."))
    prior: Literal["auto", "tv1d", "tv2d", "gp", "none"] = Field("auto", description=(
        "Prior of the L-BFGS objective: tv1d (flat layers, 1-D profile), tv2d (total variation), "
        "gp (Gaussian-process eigenbasis), none; auto chooses per sample from its family when "
        "known, else from the start's lateral variation."))
    classifier: str | None = Field(None, description=(
        "A family-classifier run (seisinv train, task: family): each sample's family, for "
        "prior auto and the per-family weights, is its answer on the start map (instead of "
        "the dataset's label); recorded per sample in fwi/<id>.json."))
    prior_strength: float | None = Field(None, ge=0, description=(
        "Weight of the prior against the data misfit (default: per prior and family, "
        "seisinv.fwi.priors.DEFAULT_WEIGHTS)."))
    tv_epsilon: float = Field(1e-3, gt=0, description=(
        "TV smoothing: |d| becomes sqrt(d^2 + eps^2) - eps, d in fractions of the velocity "
        "range (1e-3 = 3 m/s on OpenFWI)."))
    tv_isotropic: bool = Field(False, description=(
        "tv2d penalises sqrt(dz^2 + dx^2) instead of |dz| + |dx| (anisotropic, the 2nd place's)."))
    gp_modes: int = Field(1073, ge=1, description=(
        "Eigenvectors of the gp prior's covariance kept (the 2nd place kept 1,073 for Style_A)."))
    gp_length: float = Field(3.48, gt=0, description="Correlation length of the gp prior, cells.")
    gp_sigma: float = Field(0.0611, gt=0, description=(
        "Standard deviation of the gp prior, fraction of the velocity range (183 m/s on OpenFWI)."))
    rounds: int = Field(1, ge=1, description=(
        "L-BFGS restarts per band (curvature history cleared, objective re-scaled); the "
        "band's iterations are split over them."))
    history: int = Field(30, ge=1, description=(
        "L-BFGS curvature pairs kept (30: measured faster than 10 on layered maps; tv1d has "
        "nz unknowns, so 30-70 is close to full BFGS)."))
    tol_change: float = Field(1e-6, ge=0, description=(
        "L-BFGS stops a sample whose objective fell by less than this fraction over 5 "
        "iterations."))
    gauss_newton: int = Field(20, ge=0, description=(
        "Gauss-Newton steps at most after the L-BFGS iterations (0: none), for samples whose "
        "prior has at most gn_max_unknowns unknowns (tv1d: one per depth row); a sample stops "
        "when a step gains < 0.1 %; finite-difference Jacobian, k + 6 forward simulations per "
        "step (~25 gradients on OpenFWI); l2 misfit only. 20 took a real FlatVel_A map from "
        "31.4 to 1.4 m/s against OpenFWI's own data (17 steps, docs/fwi.md)."))
    gn_max_unknowns: int = Field(128, ge=1, description=(
        "Largest prior size that gets the Gauss-Newton steps."))
    precision: Literal["float64", "mixed", "float32"] = Field("float64", description=(
        "Arithmetic of the L-BFGS path: float64 (simulation, misfit, optimiser); mixed "
        "(float32 wave simulation, float64 misfit and optimiser; Gauss-Newton's "
        "finite-difference Jacobian stays float64); float32 (everything)."))
    physics: Literal["deepwave", "openfwi"] = Field("deepwave", description=(
        "Forward model of the inversion: deepwave (simulate, PML of boundary_width cells) or "
        "openfwi (OpenFWI's own scheme, 120-cell damped sponge and periodic stencil, which made "
        "the OpenFWI / Kaggle GWI data: no modelling error against them; 17-22x deepwave's "
        "cost per gradient on a CPU; square cells only; docs/fwi.md)."))
    sponge_width: int = Field(120, ge=2, description=(
        "physics openfwi: cells of the replicated, damped border on each side (OpenFWI's 120)."))
    boundary_width: int | None = Field(20, ge=0, description=(
        "Absorbing layer of FWI's deepwave simulation in cells, at least (the survey's own when "
        "wider; 0 or None: the survey's). 20 against the openfwi preset's 8: a 10x lower misfit floor "
        "against OpenFWI's own data (docs/fwi.md), 1.5x the cell updates."))
    lr: float = Field(0.3, gt=0, description=(
        "Adam step size in the bounded (logit) parameter: a mid-range cell moves up to "
        "~0.07 (vmax - vmin) per iteration."))
    misfit: Literal["l2", "normalized"] = Field("l2", description=(
        "l2 (energy-normalised least squares) or normalized (trace-normalised correlation, "
        "robust to amplitude errors)."))
    bands: tuple[float, ...] = Field((), description=(
        "Low-pass corners in Hz, low to high, one stage each; 0 = unfiltered; e.g. 8,15,0."))
    filter_order: int = Field(6, ge=1, description="Butterworth order of the low-pass.")
    time_gain: float = Field(0.0, ge=0, description=(
        "Weight both gathers by (t/T)**gain before the misfit (boosts deep arrivals)."))
    smooth_sigma: float = Field(1.0, ge=0, description="Adam: gradient smoothing, cells.",
                                json_schema_extra=_flag("--smooth-grad"))
    depth_power: float = Field(0.0, ge=0, description=(
        "Adam: scale the gradient by ((z+1)/nz)**power."))
    mask_rows: int | None = Field(0, ge=0, description=(
        "Top rows kept fixed (default 0; a start wrong there makes FWI explain it below)."))
    regularization: Literal["none", "tv", "tikhonov"] = Field("none", description=(
        "Adam: none, tv or tikhonov regularisation on velocity / range."),
        json_schema_extra=_flag("--reg"))
    reg_weight: float = Field(0.0, ge=0, description="Adam: regularisation weight.")
    prior_weight: float = Field(0.0, ge=0, description=(
        "Adam: weight of mean(((v - v_start) / range)^2), a pull toward the start; 0: none."))
    shots_per_iter: int | None = Field(None, ge=1, description=(
        "Adam: random shots simulated per iteration (default all)."))
    estimate_wavelet: bool = Field(False, description=(
        "Adam: re-estimate the source wavelet every iteration (matching filter)."))
    model_coarsen: int = Field(1, ge=1, description=(
        "Adam: invert on a grid this many times coarser, bilinearly interpolated."))
    batch_size: int | None = Field(None, ge=1, description=(
        "Samples inverted together (default: 4 on CPU; on CUDA as many as fit in the free "
        "device memory, at most 64)."))
    bound_margin: float = Field(0.002, gt=0, lt=0.5, description=(
        "Adam: fraction of the velocity range kept between the start and the bounds."))
    seed: int = Field(0, description="Seed of the shot subsampling.")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N.")

    @field_validator("bands")
    @classmethod
    def _bands_non_negative(cls, bands: tuple[float, ...]) -> tuple[float, ...]:
        if any(b < 0 for b in bands):
            raise ValueError(f"band corners must be >= 0 Hz (0 = unfiltered), got {bands}")
        return bands

    @model_validator(mode="after")
    def _optimizer_options(self) -> FwiConfig:
        if self.optimizer == "adam" and self.prior not in ("auto", "none"):
            raise ValueError(f"prior {self.prior!r} needs optimizer lbfgs (adam has no prior)")
        if self.optimizer == "adam" and self.classifier is not None:
            raise ValueError("classifier needs optimizer lbfgs (it chooses the prior)")
        if self.optimizer == "lbfgs":
            adam_only = [name for name in ("shots_per_iter", "estimate_wavelet")
                         if getattr(self, name) not in (None, False)]
            if self.model_coarsen != 1:
                adam_only.append("model_coarsen")
            if adam_only:
                raise ValueError(f"{', '.join(adam_only)} need optimizer adam (L-BFGS needs "
                                 "the same objective at every evaluation, on the survey grid)")
        return self

    def stages(self) -> list[tuple[float, int]]:
        """``[(corner_hz, iterations), ...]``: the iterations split as evenly as possible."""
        bands = self.bands or (0.0,)
        base, extra = divmod(self.iters, len(bands))
        return [(b, base + (i < extra)) for i, b in enumerate(bands) if base + (i < extra) > 0]

    def replace(self, **changes) -> FwiConfig:
        """A validated copy with some fields changed."""
        return fwi_config(self.model_dump() | changes)


def fwi_config(data: dict | None = None, labels: dict[str, str] | None = None) -> FwiConfig:
    """Build a ``FwiConfig`` from a mapping; raises ``ConfigError`` naming the bad key.

    ``labels`` renames keys in the message (the CLI passes its flags).
    """
    labels = labels or {}
    try:
        return FwiConfig.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{labels.get('.'.join(str(p) for p in err['loc']), '.'.join(str(p) for p in err['loc'])) or '(config)'}: "
            f"{err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid FWI settings: {problems}") from None
