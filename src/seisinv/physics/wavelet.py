"""Source wavelets: the Ricker wavelet and the survey's default source signature."""

from __future__ import annotations

import math

import torch

from seisinv.errors import SeisinvError
from seisinv.survey import Survey


def openfwi_wavelet_length(freq: float, dt: float) -> int:
    """Number of samples of OpenFWI's Ricker: ``int(2.2 / freq / dt)`` forced odd.

    OpenFWI's wavelet has ``2 * floor(2.2 / freq / dt / 2) + 1`` samples and peaks on its
    middle sample (index 73 at 15 Hz, 1 ms). Because OpenFWI injects wavelet sample ``i`` one
    step late, its gathers equal ours (sample ``j`` at time ``j dt``, wavelet sample ``i`` at
    ``i dt``) with the peak at ``(length // 2 - 1) dt``: 72 ms for the ``openfwi`` survey
    (see docs/physics.md).
    """
    return 2 * int(math.floor(2.2 / freq / dt / 2)) + 1


def default_peak_time(freq: float) -> float:
    """Default wavelet peak time in seconds, ``1.1 / freq`` (73.3 ms at 15 Hz).

    Late enough that the Ricker starts from ~1e-5 of its peak, so the record begins quietly.
    """
    return 1.1 / freq


def ricker(freq: float, dt: float, nt: int, peak_time: float | None = None) -> torch.Tensor:
    """Ricker wavelet ``(1 - 2 a) exp(-a)``, ``a = (pi freq (t - peak_time))^2``, unit peak.

    Args:
        freq: peak frequency in Hz.
        dt: sample interval in seconds.
        nt: number of samples; sample ``i`` is at time ``i * dt``.
        peak_time: time of the peak in seconds (default: ``default_peak_time(freq)``).

    Returns:
        (nt,) float32 tensor on the CPU, dimensionless (peak value 1 at ``peak_time``).
    """
    if freq <= 0 or dt <= 0 or nt < 1:
        raise SeisinvError(
            f"ricker: need freq > 0 Hz, dt > 0 s and nt >= 1, got freq={freq}, dt={dt}, nt={nt}"
        )
    if peak_time is None:
        peak_time = default_peak_time(freq)
    # Computed in float64 so long records (10001 samples) do not accumulate rounding in t.
    t = torch.arange(nt, dtype=torch.float64) * dt - peak_time
    a = (math.pi * freq * t) ** 2
    return ((1.0 - 2.0 * a) * torch.exp(-a)).to(torch.float32)


def survey_wavelet(survey: Survey, nt: int | None = None) -> torch.Tensor:
    """The survey's source wavelet: a Ricker at ``survey.frequency`` peaking at
    ``survey.wavelet_peak_time`` (or the default), sampled at ``survey.dt``.

    Returns:
        (nt or survey.nt,) float32 tensor on the CPU, dimensionless.
    """
    return ricker(survey.frequency, survey.dt, nt or survey.nt, survey.wavelet_peak_time)
