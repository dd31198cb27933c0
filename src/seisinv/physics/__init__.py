"""Forward modelling: source wavelets and deepwave acoustic simulation of survey gathers.

    >>> from seisinv.physics import simulate
    >>> gathers = simulate(velocity, OPENFWI)   # (n, 70, 70) m/s -> (n, 5, 1000, 70)

Public API: ``simulate`` (velocity maps -> gathers, differentiable; ``shots=`` and
``wavelet=`` for FWI), ``ricker`` / ``survey_wavelet`` / ``default_peak_time`` (source
wavelets) and ``openfwi_reference`` (slow re-implementation of OpenFWI's scheme, for checks).
Conventions (units, sign, timing, amplitude) are in docs/physics.md.
"""

from seisinv.physics.forward import simulate
from seisinv.physics.openfwi_reference import openfwi_reference
from seisinv.physics.wavelet import default_peak_time, ricker, survey_wavelet

__all__ = ["default_peak_time", "openfwi_reference", "ricker", "simulate", "survey_wavelet"]
