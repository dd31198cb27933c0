"""Forward modelling: source wavelets and deepwave acoustic simulation of survey gathers.

Public API: ``simulate`` (velocity maps -> gathers), ``ricker`` and ``survey_wavelet``.
"""

from seisinv.physics.forward import simulate
from seisinv.physics.wavelet import default_peak_time, ricker, survey_wavelet

__all__ = ["default_peak_time", "ricker", "simulate", "survey_wavelet"]
