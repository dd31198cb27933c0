"""Seeded training augmentations, named in configs: ``build_augment([{"name": ..., **params}], survey)``.

Each step acts on one raw sample before the transform pipeline: gathers ``(shots, time,
receivers)`` float32 and velocity ``(nz, nx)`` (survey units, depth first, or None), drawing every
random number from the ``numpy.random.Generator`` it is given (``SeismicDataset`` seeds it from
``(seed, epoch, index)``), so a run is reproducible whatever the number of workers.

=================  ==========================================  ====================================
name               params                                      effect
=================  ==========================================  ====================================
``flip``           ``p=0.5``, ``strategy="auto"``              left-right mirror (``seisinv.data.flip``)
``flip_slots``     ``p=0.5``, ``position=3``                   seed-001 mirror on six source slots
                                                               (``flip_source_slots``)
``flip_receivers`` ``p=0.5``                                   receivers reversed, shots kept in
                                                               order, velocity mirrored (S&S 1st
                                                               place's public code)
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
        flip.pending = False
        if rng.random() >= p:
            return gathers, velocity
        use = strategy
        if flip.deferred and velocity is not None:
            # The training loop re-simulates the unmatched shots of the whole batch on its
            # device (Augment.defer_flip); here only the exact index mirror.
            use, flip.pending = "nearest", True
        flipped = flip_sample(Sample("augment", gathers, velocity), survey, strategy=use)
        return flipped.gathers, flipped.velocity

    flip.deferred, flip.pending = False, False
    flip.strategy = strategy
    return flip


@AUGMENTS.register("flip_slots")
def _flip_slots(survey: Survey, p: float = 0.5, position: int = 3) -> AugmentStep:
    _probability("flip_slots", p)
    from .flip import flip_source_slots, flip_velocity

    def flip_slots(gathers, velocity, rng):
        if rng.random() >= p:
            return gathers, velocity
        flipped = flip_source_slots(gathers, position, survey.n_shots)
        return flipped, None if velocity is None else flip_velocity(velocity)

    return flip_slots


@AUGMENTS.register("flip_receivers")
def _flip_receivers(survey: Survey, p: float = 0.5) -> AugmentStep:
    _probability("flip_receivers", p)
    from .flip import flip_receivers, flip_velocity

    def flip_receivers_step(gathers, velocity, rng):
        if rng.random() >= p:
            return gathers, velocity
        return flip_receivers(gathers), None if velocity is None else flip_velocity(velocity)

    return flip_receivers_step


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

    def __init__(self, steps: Sequence[AugmentStep], specs: Sequence[dict],
                 survey: Survey | None = None) -> None:
        self.steps = list(steps)
        self.specs = [dict(s) for s in specs]
        self.survey = survey

    def __repr__(self) -> str:
        return f"Augment({[s['name'] for s in self.specs]})"

    def __call__(self, gathers: np.ndarray, velocity: np.ndarray | None,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        for step in self.steps:
            gathers, velocity = step(gathers, velocity, rng)
        return gathers, velocity

    def defer_flip(self) -> bool:
        """Leave the simulation part of a final ``flip`` step to the caller.

        When the last step is a ``flip`` whose strategy re-simulates shots, it then mirrors by
        index only and ``pending_flip`` tells whether the sample just augmented was flipped; the
        caller re-simulates the unmatched shots of a batch at once
        (``seisinv.data.flip.flip_batch``). The flip must be last so no later step acts on shots
        that will be replaced (earlier steps are dropped on those shots, as ``flip_sample``
        does). Returns False, changing nothing, when that does not apply.
        """
        if not self.steps or not hasattr(self.steps[-1], "deferred"):
            return False
        last = self.steps[-1]
        if self.survey is None or last.strategy == "nearest" or not len(self.flip_shots()):
            return False
        last.deferred = True
        return True

    def flip_shots(self):
        """Shots a final flip step re-simulates (empty when it does not re-simulate)."""
        from .flip import resimulated_shots, resolve_strategy

        last = self.steps[-1]
        strategy = last.strategy
        if strategy == "auto":
            strategy = resolve_strategy(self.survey, True)
        return resimulated_shots(self.survey) if strategy == "resimulate" else []

    @property
    def pending_flip(self) -> bool:
        """True when the last sample's deferred flip still needs its shots re-simulated."""
        return bool(self.steps and getattr(self.steps[-1], "pending", False))

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
    return Augment(built, steps or [], survey)
