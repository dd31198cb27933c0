"""Forward modelling: source wavelets and deepwave acoustic simulation of survey gathers.

    >>> from seisinv.physics import simulate
    >>> gathers = simulate(velocity, OPENFWI)   # (n, 70, 70) m/s -> (n, 5, 1000, 70)

Public API: ``simulate`` (velocity maps -> gathers, differentiable; ``shots=`` and
``wavelet=`` for FWI), ``ricker`` / ``survey_wavelet`` / ``default_peak_time`` (source
wavelets), ``l2_misfit`` / ``relative_l2`` / ``normalized_misfit`` (gather misfits, used by FWI,
the physics loss and qc) ``openfwi_reference`` (OpenFWI's own scheme, for checks) and ``openfwi_scheme`` (the same,
differentiable, for FWI against OpenFWI data).
Conventions (units, sign, timing, amplitude) are in docs/physics.md.
"""

from seisinv.physics.forward import simulate
from seisinv.physics.misfit import MISFITS, l2_misfit, normalized_misfit, relative_l2
from seisinv.physics.openfwi_reference import openfwi_reference, openfwi_scheme
from seisinv.physics.wavelet import default_peak_time, ricker, survey_wavelet

__all__ = [
    "MISFITS",
    "default_peak_time",
    "l2_misfit",
    "normalized_misfit",
    "openfwi_reference",
    "openfwi_scheme",
    "relative_l2",
    "ricker",
    "simulate",
    "survey_wavelet",
]
