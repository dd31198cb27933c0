"""Time-series operators used by FWI: zero-phase low-pass filtering and source-wavelet estimation.

Both act on the last (time) axis of gathers ``(..., time)`` or ``(..., time, receivers)`` as
chosen by ``time_axis`` and are linear, differentiable torch operations, so they can be applied to
simulated data inside the misfit without breaking the gradient.
"""

from __future__ import annotations

import torch


def _spectrum_length(nt: int) -> int:
    # Pad to at least twice the record so the circular FFT convolution does not wrap the end of
    # the trace onto its start.
    n = 1
    while n < 2 * nt:
        n *= 2
    return n


def lowpass(traces: torch.Tensor, dt: float, corner_hz: float, order: int = 6,
            time_axis: int = -2) -> torch.Tensor:
    """Zero-phase Butterworth low-pass along the time axis (an FFT mask, differentiable).

    The mask is ``|H(f)|^2 = 1 / (1 + (f / corner)^(2 order))``: the magnitude response of a
    Butterworth filter applied forward and backward (``scipy.signal.sosfiltfilt``), without its
    edge transients.

    Args:
        traces: real tensor with time on ``time_axis`` (default: gathers ``(..., time, receivers)``).
        dt: sample interval in seconds.
        corner_hz: -6 dB corner frequency in Hz; ``<= 0`` or ``inf`` returns ``traces`` unchanged.
        order: Butterworth order of the one-way filter.
        time_axis: the time axis of ``traces``.

    Returns:
        Filtered tensor, same shape and dtype as ``traces``.
    """
    if corner_hz <= 0 or corner_hz == float("inf"):
        return traces
    nt = traces.shape[time_axis]
    nfft = _spectrum_length(nt)
    freqs = torch.fft.rfftfreq(nfft, d=dt, device=traces.device, dtype=torch.float64)
    mask = (1.0 / (1.0 + (freqs / corner_hz) ** (2 * order))).to(traces.dtype)
    shape = [1] * traces.dim()
    shape[time_axis] = mask.numel()
    spectrum = torch.fft.rfft(traces, n=nfft, dim=time_axis) * mask.reshape(shape)
    return torch.fft.irfft(spectrum, n=nfft, dim=time_axis).narrow(time_axis, 0, nt)


def wiener_filter(observed: torch.Tensor, simulated: torch.Tensor, damping: float = 1e-3,
                  time_axis: int = -2) -> torch.Tensor:
    """Least-squares matching filter per frequency that maps ``simulated`` onto ``observed``.

    Used to estimate an unknown source wavelet: the data are linear in the wavelet, so
    ``W(f) = sum O(f) S*(f) / (sum |S(f)|^2 + eps)`` (sums over every trace of a sample) is the
    correction that turns the current wavelet into the least-squares best one for the current
    model. ``eps = damping * max |S|^2`` stabilises frequencies without energy.

    Args:
        observed, simulated: ``(batch, shots, time, receivers)`` (time on ``time_axis``).
        damping: relative white-noise level of the deconvolution.
        time_axis: the time axis.

    Returns:
        ``(batch, nfreq)`` complex spectrum of the filter for ``nfft = _spectrum_length(nt)``
        (not differentiated: computed from detached inputs).
    """
    nt = observed.shape[time_axis]
    nfft = _spectrum_length(nt)
    obs = torch.fft.rfft(observed.detach(), n=nfft, dim=time_axis).movedim(time_axis, -1)
    syn = torch.fft.rfft(simulated.detach(), n=nfft, dim=time_axis).movedim(time_axis, -1)
    batch = observed.shape[0]
    cross = (obs * syn.conj()).reshape(batch, -1, obs.shape[-1]).sum(1)
    power = (syn.abs() ** 2).reshape(batch, -1, syn.shape[-1]).sum(1)
    eps = damping * power.amax(dim=-1, keepdim=True).clamp_min(torch.finfo(power.dtype).tiny)
    return cross / (power + eps)


def apply_filter(traces: torch.Tensor, spectrum: torch.Tensor, time_axis: int = -2) -> torch.Tensor:
    """Convolve each sample's traces with a per-sample filter given by its spectrum.

    Args:
        traces: ``(batch, shots, time, receivers)`` real tensor (time on ``time_axis``).
        spectrum: ``(batch, nfreq)`` complex filter spectrum from ``wiener_filter``.

    Returns:
        Filtered traces, same shape; differentiable w.r.t. ``traces``.
    """
    nt = traces.shape[time_axis]
    nfft = _spectrum_length(nt)
    shape = [traces.shape[0]] + [1] * (traces.dim() - 1)
    shape[time_axis] = spectrum.shape[-1]
    spec = torch.fft.rfft(traces, n=nfft, dim=time_axis) * spectrum.reshape(shape)
    return torch.fft.irfft(spec, n=nfft, dim=time_axis).narrow(time_axis, 0, nt)


def filter_wavelet(wavelet: torch.Tensor, spectrum: torch.Tensor) -> torch.Tensor:
    """The wavelet after a matching filter: ``(nt,)`` wavelet, ``(batch, nfreq)`` -> ``(batch, nt)``."""
    nt = wavelet.shape[-1]
    nfft = _spectrum_length(nt)
    spec = torch.fft.rfft(wavelet.to(spectrum.real.dtype), n=nfft) * spectrum
    return torch.fft.irfft(spec, n=nfft)[..., :nt]
