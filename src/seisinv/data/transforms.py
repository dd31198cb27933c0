"""Pure functions on gathers and velocities. ``seisinv.data.pipeline`` chains them by name.

Gather functions take ``(..., shots, time, receivers)`` numpy arrays (any leading batch axes) and
return new float32 arrays; each docstring gives the output shape. Velocity functions work on
numpy arrays and torch tensors alike.

Time resampling: a Kaiser-windowed sinc low-pass (cut-off at the lower of the two Nyquist
frequencies, so it is anti-aliased when shortening and band-limited when lengthening) evaluated at
the new sample times, applied as one sparse ``(new_length, length)`` matrix product. This is the
filter ``scipy.signal.resample_poly`` applies, but the matrix is built once per length pair and the
product costs ~2 ms for a Speed & Structure sample (10001 -> 2048, 155 traces) instead of ~20 ms;
unlike FFT resampling (``scipy.signal.resample``) it does not treat the record as periodic, so the
late end of a trace never leaks into its first arrivals. Sample ``k`` of the output lies at input
time ``k * length / new_length`` samples: the new interval is ``dt * length / new_length``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from seisinv.errors import DataError
from seisinv.survey import Survey

# Zero crossings of the low-pass sinc kept on each side and the Kaiser window's beta. The filter
# is symmetric (zero phase: arrivals do not move). Measured for 10001 -> 2048 (tests and
# docs/data.md): gain 1.00 up to half the new Nyquist frequency, 0.83 at 0.8 of it, tones beyond
# 1.5x Nyquist attenuated below 0.01. 4 lobes cost 8 x (length / new_length) taps per output
# sample and run ~4x faster than 8 lobes on this machine; the challenges' energy (< 100 Hz)
# sits far inside the pass band of any length >= 1000 at 0.1 ms.
SINC_ZERO_CROSSINGS = 4
KAISER_BETA = 5.0


def _float32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


def scale_amplitude(gathers: np.ndarray, factor: float) -> np.ndarray:
    """Multiply by a fixed ``factor`` (e.g. 1e4 to bring tiny pressures near 1). Shape kept."""
    return _float32(gathers * np.float32(factor))


def zscore(gathers: np.ndarray, mean: float, std: float) -> np.ndarray:
    """``(gathers - mean) / std`` with dataset statistics from ``Pipeline.fit``. Shape kept."""
    if not std > 0:
        raise DataError(f"z-score: standard deviation {std} must be positive")
    return _float32((gathers - np.float32(mean)) / np.float32(std))


def clip(gathers: np.ndarray, low: float, high: float) -> np.ndarray:
    """Clip values to ``[low, high]``. Shape kept."""
    return _float32(np.clip(gathers, low, high))


@lru_cache(maxsize=16)
def resampling_matrix(length: int, new_length: int) -> scipy.sparse.csr_matrix:  # noqa: F821
    """The ``(new_length, length)`` sparse matrix resampling one trace of ``length`` samples.

    Row ``k`` holds the Kaiser-windowed sinc taps centred on input position
    ``k * length / new_length``; its cut-off is the lower Nyquist frequency of the two rates.
    Taps past either end of the record are dropped (zero padding, as ``resample_poly`` does).
    """
    import scipy.sparse  # here, not at module level: it costs ~0.5 s of start-up

    ratio = length / new_length
    width = max(ratio, 1.0)  # input samples per sinc lobe: wider when decimating
    half = SINC_ZERO_CROSSINGS * width
    centres = np.arange(new_length) * ratio
    first = np.floor(centres - half).astype(np.int64) + 1
    taps = int(np.ceil(2 * half)) + 1
    columns = first[:, None] + np.arange(taps)[None, :]
    offset = (columns - centres[:, None]) / width
    window = np.i0(KAISER_BETA * np.sqrt(np.clip(1 - (offset / SINC_ZERO_CROSSINGS) ** 2, 0, None)))
    weights = np.sinc(offset) * window / np.i0(KAISER_BETA) / width
    inside = (columns >= 0) & (columns < length)
    rows = np.broadcast_to(np.arange(new_length)[:, None], columns.shape)
    matrix = scipy.sparse.csr_matrix(
        (weights[inside].astype(np.float32), (rows[inside], columns[inside])),
        shape=(new_length, length),
    )
    matrix.sort_indices()
    return matrix


def resample_time(gathers: np.ndarray, length: int) -> np.ndarray:
    """Anti-aliased resampling of the time axis to ``length`` samples (see the module docstring).

    ``(..., shots, T, receivers) -> (..., shots, length, receivers)``; the sample interval becomes
    ``dt * T / length``.
    """
    *lead, shots, time, receivers = gathers.shape
    if length == time:
        return _float32(gathers)
    if length < 2:
        raise DataError(f"resample: length {length} must be at least 2")
    # Time first, all traces side by side: one sparse product for the whole sample / batch.
    traces = np.moveaxis(gathers.reshape(-1, shots, time, receivers), 2, 0).reshape(time, -1)
    out = resampling_matrix(time, length) @ np.ascontiguousarray(traces, dtype=np.float32)
    out = np.moveaxis(out.reshape(length, -1, shots, receivers), 0, 2)
    return _float32(out.reshape(*lead, shots, length, receivers))


def resample_time_linear(gathers: np.ndarray, length: int) -> np.ndarray:
    """Linear interpolation of the time axis to ``length`` samples, first and last samples kept.

    Exactly ``scipy.interpolate.interp1d(np.linspace(0, 1, T), gathers, axis=-2,
    kind="linear")(np.linspace(0, 1, length))`` (the Speed & Structure 2nd-place resampling), but
    without scipy: output sample ``k`` lies at input position ``k * (T - 1) / (length - 1)``.
    No anti-alias filter: shortening a record aliases energy above the new Nyquist frequency (the
    windowed sinc of ``resample_time`` does not).

    ``(..., shots, T, receivers) -> (..., shots, length, receivers)``.
    """
    time = gathers.shape[-2]
    if length < 2 or time < 2:
        raise DataError(f"resample (linear): need at least 2 samples in and out, got {time} -> "
                        f"{length}")
    if length == time:
        return _float32(gathers)
    position = np.linspace(0.0, time - 1.0, length)
    # interp1d finds the left neighbour with searchsorted on the old grid; the last point uses the
    # segment ending at it, so the weight there is exactly 1.
    left = np.clip(np.floor(position).astype(np.int64), 0, time - 2)
    weight = (position - left).astype(np.float64)[:, None]
    data = np.asarray(gathers, dtype=np.float64)
    out = data[..., left, :] * (1.0 - weight) + data[..., left + 1, :] * weight
    return _float32(out)


def resample_time_area(gathers: np.ndarray, length: int) -> np.ndarray:
    """Area (adaptive average) resampling of the time axis, as ``torch.nn.functional.interpolate(
    ..., mode="area")``: output sample ``i`` is the mean of input samples
    ``floor(i * T / length) .. ceil((i + 1) * T / length) - 1``.

    The S&S 1st place maps 10001 samples to 10000 this way. ``(..., S, T, R) -> (..., S, length, R)``.
    """
    time = gathers.shape[-2]
    if length < 1:
        raise DataError(f"resample (area): length {length} must be at least 1")
    if length == time:
        return _float32(gathers)
    index = np.arange(length)
    start = (index * time) // length
    end = -((-(index + 1) * time) // length)  # ceil
    cumulative = np.cumsum(np.asarray(gathers, dtype=np.float64), axis=-2)
    zero = np.zeros_like(cumulative[..., :1, :])
    cumulative = np.concatenate([zero, cumulative], axis=-2)
    sums = cumulative[..., end, :] - cumulative[..., start, :]
    return _float32(sums / (end - start)[:, None])


def trim_time(gathers: np.ndarray, end: int) -> np.ndarray:
    """Drop the last ``end`` time samples: ``(..., S, T, R) -> (..., S, T - end, R)``.

    Speed & Structure's EVA solutions drop sample 10001 so that 10000 samples fold evenly.
    """
    time = gathers.shape[-2]
    if not 0 <= end < time:
        raise DataError(f"trim_time: cannot drop {end} of {time} time samples")
    return _float32(gathers[..., : time - end, :])


def fold_time(gathers: np.ndarray, rows: int) -> np.ndarray:
    """Fold the time axis into ``rows`` rows, each row's chunk laid out receiver-major.

    ``(..., S, T, R) -> (..., S, rows, R * T / rows)``: column ``r * (T / rows) + k`` of row ``i``
    holds receiver ``r`` at time sample ``i * T / rows + k``. This is the public code of the
    Speed & Structure EVA solutions (``x.reshape(N, C, rows, T // rows, R).permute(0, 1, 2, 4,
    3).reshape(N, C, rows, R * T // rows)``), e.g. (5, 10000, 31) -> (5, 1000, 310) with
    ``rows=1000`` (seed 001) or (5, 100, 3100) with ``rows=100`` (1st place). ``time_to_width``
    lays the same pixels out differently (consecutive time windows side by side).
    """
    *lead, shots, time, receivers = gathers.shape
    if rows < 1 or time % rows:
        raise DataError(f"fold_time: {time} time samples do not fold into {rows} rows; "
                        "trim or resample first")
    out = gathers.reshape(*lead, shots, rows, time // rows, receivers)
    out = np.swapaxes(out, -1, -2)  # (..., S, rows, R, T/rows)
    return _float32(out.reshape(*lead, shots, rows, receivers * (time // rows)))


def insert_zero_shot(gathers: np.ndarray, position: int) -> np.ndarray:
    """Insert an all-zero shot at index ``position`` of the shot axis.

    ``(..., S, T, R) -> (..., S + 1, T, R)``. Seed 001 feeds six source slots (1, 75, 150, 151,
    225, 300): slot 151, the mirror of source 150, holds zeros until a flip moves source 150's
    data there (``seisinv.data.flip.flip_source_slots``).
    """
    shots = gathers.shape[-3]
    if not 0 <= position <= shots:
        raise DataError(f"insert_zero_shot: position {position} outside 0..{shots}")
    zeros = np.zeros((*gathers.shape[:-3], 1, *gathers.shape[-2:]), dtype=np.float32)
    return _float32(np.concatenate([gathers[..., :position, :, :], zeros,
                                    gathers[..., position:, :, :]], axis=-3))


def crop_time(gathers: np.ndarray, start: int, length: int) -> np.ndarray:
    """Keep time samples ``start .. start + length - 1``: ``(..., S, T, R) -> (..., S, length, R)``."""
    time = gathers.shape[-2]
    if start < 0 or length < 1 or start + length > time:
        raise DataError(f"crop: samples {start}..{start + length} outside a record of {time}")
    return _float32(gathers[..., start:start + length, :])


def time_to_width(gathers: np.ndarray, chunks: int) -> np.ndarray:
    """Cut the record into ``chunks`` consecutive time windows placed side by side in width.

    ``(..., S, T, R) -> (..., S, T / chunks, chunks * R)``; column ``c * R + r`` holds receiver
    ``r`` of window ``c`` (samples ``c * T/chunks ...``). E.g. (5, 10000, 31) -> (5, 1000, 310).
    Each window stays a continuous-time image, so convolutions see coherent events.
    Inverse: ``width_to_time``.
    """
    *lead, shots, time, receivers = gathers.shape
    if time % chunks:
        raise DataError(f"time_to_width: {time} time samples do not split into {chunks} chunks; "
                        "crop or resample first")
    out = gathers.reshape(*lead, shots, chunks, time // chunks, receivers)
    out = np.moveaxis(out, -3, -2)  # (..., S, T/chunks, chunks, R)
    return _float32(out.reshape(*lead, shots, time // chunks, chunks * receivers))


def width_to_time(image: np.ndarray, chunks: int) -> np.ndarray:
    """Inverse of ``time_to_width``: ``(..., S, T/c, c * R) -> (..., S, T, R)``."""
    *lead, shots, rows, width = image.shape
    out = image.reshape(*lead, shots, rows, chunks, width // chunks)
    out = np.moveaxis(out, -2, -3)
    return _float32(out.reshape(*lead, shots, chunks * rows, width // chunks))


def pad_receivers(gathers: np.ndarray, to: int, mode: str = "constant") -> np.ndarray:
    """Pad the receiver axis on the right to ``to`` traces: ``(..., S, T, R) -> (..., S, T, to)``.

    Args:
        mode: ``"constant"`` (zeros) or ``"edge"`` (repeat the last trace).
    """
    receivers = gathers.shape[-1]
    if to < receivers:
        raise DataError(f"pad_receivers: cannot pad {receivers} receivers down to {to}")
    if mode not in ("constant", "edge"):
        raise DataError(f"pad_receivers: mode {mode!r}; use 'constant' or 'edge'")
    widths = [(0, 0)] * (gathers.ndim - 1) + [(0, to - receivers)]
    return _float32(np.pad(gathers, widths, mode=mode))


def unpad_receivers(gathers: np.ndarray, receivers: int) -> np.ndarray:
    """Inverse of ``pad_receivers``: keep the first ``receivers`` traces."""
    return _float32(gathers[..., :receivers])


def shots_side_by_side(gathers: np.ndarray) -> np.ndarray:
    """Place the shots side by side in width: ``(..., S, T, R) -> (..., 1, T, S * R)``.

    Column ``s * R + r`` is receiver ``r`` of shot ``s``. Inverse: ``shots_from_side_by_side``.
    """
    *lead, shots, time, receivers = gathers.shape
    out = np.moveaxis(gathers, -3, -2)  # (..., T, S, R)
    return _float32(out.reshape(*lead, 1, time, shots * receivers))


def shots_from_side_by_side(image: np.ndarray, shots: int) -> np.ndarray:
    """Inverse of ``shots_side_by_side``: ``(..., 1, T, S * R) -> (..., S, T, R)``."""
    *lead, _, time, width = image.shape
    out = image.reshape(*lead, time, shots, width // shots)
    return _float32(np.moveaxis(out, -2, -3))


def normalize_velocity(velocity, survey: Survey):
    """Map velocity in survey units to ``[0, 1]`` over ``[vmin, vmax]`` (numpy or torch, any shape)."""
    return (velocity - survey.vmin) / (survey.vmax - survey.vmin)


def denormalize_velocity(normalized, survey: Survey):
    """Inverse of ``normalize_velocity``: ``[0, 1]`` -> survey units (numpy or torch, any shape)."""
    return normalized * (survey.vmax - survey.vmin) + survey.vmin
