"""Seeded training augmentations, named in configs: ``build_augment([{"name": ..., **params}], survey)``.

Each step acts on one raw sample before the transform pipeline: gathers ``(shots, time,
receivers)`` float32 and velocity ``(nz, nx)`` (survey units, depth first, or None), drawing every
random number from the ``numpy.random.Generator`` it is given (``SeismicDataset`` seeds it from
``(seed, epoch, index)``), so a run is reproducible whatever the number of workers.

=================  ==========================================  ====================================
name               params                                      effect
=================  ==========================================  ====================================
``flip``           ``p=0.5``, ``strategy="auto"``              left-right mirror (``seisinv.data.flip``)
``amplitude``      ``low=0.5``, ``high=2.0``, ``p=1.0``        gathers x factor, log-uniform in
                                                               [low, high]
``noise``          ``level=0.05``, ``p=0.5``,                  + Gaussian noise, std = level x RMS
                   ``min_level=None``                          (uniform in [min_level, level] when
                                                               min_level is given)
``trace_dropout``  ``rate=0.05``, ``p=0.5``                    zero each (shot, receiver) trace with
                                                               probability ``rate``
``band_limit``     ``low=(0.0, 0.05)``, ``high=(0.3, 1.0)``,   time-frequency: keep only a random
                   ``p=0.5``                                   band [f_lo, f_hi] of every trace
                                                               (fractions of Nyquist, each uniform
                                                               in its range)
``spectral_mask``  ``masks=2``, ``width=0.05``, ``p=0.5``      time-frequency: zero ``masks`` random
                                                               frequency bands of up to ``width`` x
                                                               Nyquist each (SpecAugment along
                                                               frequency)
=================  ==========================================  ====================================

The time-frequency steps act on the time axis with a real FFT of each trace and apply one drawn
band / mask to every trace of the sample (the same source spectrum seen by all receivers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from seisinv.errors import ConfigError
from seisinv.registry import Registry
from seisinv.survey import Survey

from .flip import STRATEGIES, flip_sample
from .sample import Sample

# (gathers, velocity or None, rng) -> (gathers, velocity or None)
AugmentStep = Callable[[np.ndarray, "np.ndarray | None", np.random.Generator],
                       "tuple[np.ndarray, np.ndarray | None]"]

AUGMENTS: Registry[Callable[..., AugmentStep]] = Registry("augmentation")


def _probability(name: str, p: float) -> float:
    if not 0 <= p <= 1:
        raise ConfigError(f"augmentation {name}: p = {p} must lie in [0, 1]")
    return p


@AUGMENTS.register("flip")
def _flip(survey: Survey, p: float = 0.5, strategy: str = "auto") -> AugmentStep:
    _probability("flip", p)
    if strategy not in STRATEGIES:
        raise ConfigError(f"augmentation flip: strategy {strategy!r}; use {', '.join(STRATEGIES)}")

    def flip(gathers, velocity, rng):
        if rng.random() >= p:
            return gathers, velocity
        flipped = flip_sample(Sample("augment", gathers, velocity), survey, strategy=strategy)
        return flipped.gathers, flipped.velocity

    return flip


@AUGMENTS.register("amplitude")
def _amplitude(survey: Survey, low: float = 0.5, high: float = 2.0, p: float = 1.0) -> AugmentStep:
    _probability("amplitude", p)
    if not 0 < low <= high:
        raise ConfigError(f"augmentation amplitude: need 0 < low <= high, got {low}, {high}")

    def amplitude(gathers, velocity, rng):
        if rng.random() >= p:
            return gathers, velocity
        factor = np.exp(rng.uniform(np.log(low), np.log(high)))
        return (gathers * np.float32(factor)).astype(np.float32), velocity

    return amplitude


@AUGMENTS.register("noise")
def _noise(survey: Survey, level: float = 0.05, p: float = 0.5,
           min_level: float | None = None) -> AugmentStep:
    _probability("noise", p)
    if level < 0:
        raise ConfigError(f"augmentation noise: level {level} must be >= 0")
    if min_level is not None and not 0 <= min_level <= level:
        raise ConfigError(f"augmentation noise: min_level {min_level} must be in [0, level={level}]")

    def noise(gathers, velocity, rng):
        if rng.random() >= p:
            return gathers, velocity
        std = level if min_level is None else rng.uniform(min_level, level)
        rms = float(np.sqrt(np.mean(np.square(gathers, dtype=np.float64))))
        added = rng.standard_normal(gathers.shape, dtype=np.float32) * np.float32(std * rms)
        return gathers + added, velocity

    return noise


@AUGMENTS.register("trace_dropout")
def _trace_dropout(survey: Survey, rate: float = 0.05, p: float = 0.5) -> AugmentStep:
    _probability("trace_dropout", p)
    _probability("trace_dropout rate", rate)

    def trace_dropout(gathers, velocity, rng):
        if rng.random() >= p:
            return gathers, velocity
        shots, _, receivers = gathers.shape
        keep = rng.random((shots, 1, receivers)) >= rate
        return gathers * keep.astype(np.float32), velocity

    return trace_dropout


def _fraction_range(name: str, value, what: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"augmentation {name}: {what} must be a pair [min, max], got {value!r}") \
            from None
    if not 0 <= lo <= hi <= 1:
        raise ConfigError(f"augmentation {name}: {what} {value!r} must satisfy 0 <= min <= max <= 1 "
                          "(fractions of the Nyquist frequency)")
    return lo, hi


def _filter_time(gathers: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Multiply each trace's spectrum (rfft along time, axis 1) by ``keep`` (n_freq,) and invert."""
    nt = gathers.shape[1]
    spectrum = np.fft.rfft(gathers, axis=1)
    spectrum *= keep[None, :, None]
    return np.fft.irfft(spectrum, n=nt, axis=1).astype(np.float32)


@AUGMENTS.register("band_limit")
def _band_limit(survey: Survey, low: Sequence[float] = (0.0, 0.05),
                high: Sequence[float] = (0.3, 1.0), p: float = 0.5) -> AugmentStep:
    _probability("band_limit", p)
    low_range = _fraction_range("band_limit", low, "low")
    high_range = _fraction_range("band_limit", high, "high")
    if low_range[1] >= high_range[0]:
        raise ConfigError(f"augmentation band_limit: low {list(low)} must lie below high "
                          f"{list(high)}")

    def band_limit(gathers, velocity, rng):
        if rng.random() >= p:
            return gathers, velocity
        f_lo, f_hi = rng.uniform(*low_range), rng.uniform(*high_range)
        frequency = np.linspace(0.0, 1.0, gathers.shape[1] // 2 + 1)  # fraction of Nyquist
        keep = ((frequency >= f_lo) & (frequency <= f_hi)).astype(np.float64)
        return _filter_time(gathers, keep), velocity

    return band_limit


@AUGMENTS.register("spectral_mask")
def _spectral_mask(survey: Survey, masks: int = 2, width: float = 0.05,
                   p: float = 0.5) -> AugmentStep:
    _probability("spectral_mask", p)
    _probability("spectral_mask width", width)
    if masks < 0:
        raise ConfigError(f"augmentation spectral_mask: masks {masks} must be >= 0")

    def spectral_mask(gathers, velocity, rng):
        if rng.random() >= p:
            return gathers, velocity
        n_freq = gathers.shape[1] // 2 + 1
        keep = np.ones(n_freq)
        for _ in range(int(masks)):
            size = int(rng.integers(0, int(width * (n_freq - 1)) + 1))
            start = int(rng.integers(0, n_freq - size + 1))
            keep[start:start + size] = 0.0
        return _filter_time(gathers, keep), velocity

    return spectral_mask


class Augment:
    """An ordered chain of augmentation steps; ``augment(gathers, velocity, rng)``.

    Args:
        steps: the built steps; ``specs`` keeps the config entries for ``repr`` and saving.
    """

    def __init__(self, steps: Sequence[AugmentStep], specs: Sequence[dict]) -> None:
        self.steps = list(steps)
        self.specs = [dict(s) for s in specs]

    def __repr__(self) -> str:
        return f"Augment({[s['name'] for s in self.specs]})"

    def __call__(self, gathers: np.ndarray, velocity: np.ndarray | None,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        for step in self.steps:
            gathers, velocity = step(gathers, velocity, rng)
        return gathers, velocity

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        """Augment a whole ``Sample`` (gathers and velocity)."""
        gathers, velocity = self(sample.gathers, sample.velocity, rng)
        return replace(sample, gathers=gathers, velocity=velocity)


def build_augment(steps: Sequence[dict] | None, survey: Survey) -> Augment:
    """Build an ``Augment`` from config entries ``{"name": <step>, **params}`` (see module docs)."""
    built = []
    for position, spec in enumerate(steps or []):
        if not isinstance(spec, dict) or "name" not in spec:
            raise ConfigError(f"augment[{position}]: expected a mapping with a 'name', got {spec!r}")
        params = {k: v for k, v in spec.items() if k != "name"}
        builder = AUGMENTS.get(spec["name"])
        try:
            built.append(builder(survey, **params))
        except TypeError as exc:
            raise ConfigError(f"augment[{position}] ({spec['name']}): bad parameters ({exc})") \
                from None
    return Augment(built, steps or [])
