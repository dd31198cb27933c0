"""The typed settings of one FWI run (written beside its results as ``fwi_config.json``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from seisinv.errors import ConfigError


class FwiConfig(BaseModel):
    """Settings of a full-waveform inversion.

    Attributes:
        iters: total optimiser iterations per sample, split evenly over ``bands``.
        optimizer: "adam" (robust default, samples batched) or "lbfgs" (strong-Wolfe line search,
            one sample at a time so samples stay independent).
        lr: Adam step size in the bounded parameter (logit) space (0.3: a cell at mid-range moves
            up to ~0.07 (vmax - vmin) per iteration; tuned on OpenFWI starts from a network,
            where 0.03 moved too slowly and 0.6 overshot). L-BFGS: initial step, use 1.
        misfit: "l2" (energy-normalised least squares) or "normalized" (trace-normalised
            correlation, robust to amplitude mismatch).
        bands: low-pass corner frequencies in Hz, low to high, one inversion stage each (multi-scale
            continuation); 0 means the unfiltered data. ``()`` is one unfiltered stage.
        filter_order: Butterworth order of the low-pass.
        time_gain: both gathers are multiplied by ``(t / T) ** time_gain`` before the misfit
            (0: none). Boosts late, deep arrivals against the direct wave, which otherwise
            dominates an energy misfit and leaves the deep model unconstrained.
        smooth_sigma: Gaussian smoothing of the gradient, in cells of the inversion grid.
        depth_power: gradient scaling ``((z+1)/nz)**depth_power`` (0: none).
        mask_rows: top rows of the model grid kept fixed (None: down to the source row, where
            the wavefield singularity dominates the gradient). Default 0: a start that is wrong
            in the masked rows makes FWI explain their error with wrong updates below them.
        regularization: "none", "tv" (total variation) or "tikhonov" (first-derivative smoothness),
            on velocity scaled by the survey's range.
        reg_weight: weight of the regularisation relative to the data misfit.
        prior_weight: weight of ``mean(((v - v_start) / (vmax - vmin)) ** 2)``, a pull toward the
            starting model (a network's answer), relative to the data misfit (0: none). The data
            term dominates where the data constrain the model (each band's misfit starts at 1);
            where they hardly do (deep, poorly illuminated cells) the model stays near the start
            instead of drifting along the null space.
        shots_per_iter: random shots simulated per iteration (None: all shots).
        estimate_wavelet: re-estimate the source wavelet every iteration (least-squares
            per-frequency matching filter from observed vs simulated data).
        model_coarsen: invert for a model this many times coarser than the survey grid, bilinearly
            interpolated to it (fewer unknowns, implicit smoothness).
        batch_size: samples inverted together (Adam only).
        bound_margin: fraction of the velocity range kept between the initial model and the bounds
            (the logit of a value on a bound is infinite).
        seed: seed of the shot subsampling.
        device: "auto", "cpu", "cuda", ...
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    iters: int = Field(30, ge=1)
    optimizer: Literal["adam", "lbfgs"] = "adam"
    lr: float = Field(0.3, gt=0)
    misfit: Literal["l2", "normalized"] = "l2"
    bands: tuple[float, ...] = ()
    filter_order: int = Field(6, ge=1)
    time_gain: float = Field(0.0, ge=0)
    smooth_sigma: float = Field(1.0, ge=0)
    depth_power: float = Field(0.0, ge=0)
    mask_rows: int | None = Field(0, ge=0)
    regularization: Literal["none", "tv", "tikhonov"] = "none"
    reg_weight: float = Field(0.0, ge=0)
    prior_weight: float = Field(0.0, ge=0)
    shots_per_iter: int | None = Field(None, ge=1)
    estimate_wavelet: bool = False
    model_coarsen: int = Field(1, ge=1)
    batch_size: int = Field(4, ge=1)
    bound_margin: float = Field(0.002, gt=0, lt=0.5)
    seed: int = 0
    device: str = "auto"

    @field_validator("bands")
    @classmethod
    def _bands_non_negative(cls, bands: tuple[float, ...]) -> tuple[float, ...]:
        if any(b < 0 for b in bands):
            raise ValueError(f"band corners must be >= 0 Hz (0 = unfiltered), got {bands}")
        return bands

    def stages(self) -> list[tuple[float, int]]:
        """``[(corner_hz, iterations), ...]``: the iterations split as evenly as possible."""
        bands = self.bands or (0.0,)
        base, extra = divmod(self.iters, len(bands))
        return [(b, base + (i < extra)) for i, b in enumerate(bands) if base + (i < extra) > 0]

    def replace(self, **changes) -> FwiConfig:
        """A validated copy with some fields changed."""
        return fwi_config(self.model_dump() | changes)


def fwi_config(data: dict | None = None) -> FwiConfig:
    """Build a ``FwiConfig`` from a mapping; raises ``ConfigError`` naming the bad key."""
    try:
        return FwiConfig.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(config)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid FWI settings: {problems}") from None
