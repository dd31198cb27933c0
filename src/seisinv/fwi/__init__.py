"""Full-waveform inversion: refine a velocity model (a network's answer, or a smooth start) by
fitting simulated to observed gathers with deepwave (see ``docs/fwi.md``).

Public API::

    from seisinv.fwi import FwiConfig, invert, run_fwi

    result = invert(observed, initial, survey, FwiConfig(iters=30, bands=(8, 15, 0)))
    result.velocity          # (batch, nz, nx) float32, survey units
    run_fwi("data/", "openfwi", init="preds/", out="fwi_out/", config=FwiConfig())

Modules: ``config`` (settings), ``invert`` (entry point and the Adam loop), ``quasi_newton``
(float64 L-BFGS with a prior per sample, the default), ``lbfgs`` (batched L-BFGS, strong-Wolfe
line search per sample), ``gauss_newton`` (steps for small priors), ``priors`` (``tv1d``,
``tv2d``, ``gp``, ``none``; ``choose_prior``), ``family`` (each sample's family from a family
classifier run), ``batching`` (batch size), ``misfit`` (re-export
of ``seisinv.physics.misfit``), ``signal``
(low-pass, wavelet estimation), ``precondition`` (gradient smoothing, regularisation),
``initial`` (starting models), ``coarse`` (inverting on a decimated grid), ``job`` (datasets,
prediction stores, resume), ``plot`` (convergence figure).
"""

from seisinv.fwi.config import FwiConfig, fwi_config
from seisinv.fwi.initial import gradient_model, initial_from_store, smooth_model
from seisinv.fwi.invert import BoundedModel, FwiResult, invert
from seisinv.fwi.job import FwiJobSummary, read_histories, run_fwi
from seisinv.fwi.misfit import MISFITS, l2_misfit, normalized_misfit
from seisinv.fwi.priors import PRIORS, choose_prior

__all__ = [
    "MISFITS",
    "PRIORS",
    "BoundedModel",
    "FwiConfig",
    "FwiJobSummary",
    "FwiResult",
    "fwi_config",
    "gradient_model",
    "initial_from_store",
    "invert",
    "choose_prior",
    "l2_misfit",
    "normalized_misfit",
    "read_histories",
    "run_fwi",
    "smooth_model",
]
