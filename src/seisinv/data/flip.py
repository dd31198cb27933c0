"""Horizontal flip of a sample, consistent with the physics.

Mirroring the velocity left-right (``x -> (nx - 1) - x`` in cells) gives the gathers of the
mirrored survey: shot ``i`` of the flipped sample is the original shot whose source sits at the
mirror of source ``i``, with its receivers reversed the same way. That is exact only where the
geometry is mirror-symmetric on the grid:

- OpenFWI: sources at x cells 0, 17, 34, 52, 69 mirror to 69, 52, 35, 17, 0 — the middle shot
  (34) has no partner at 35; the 70 receivers mirror exactly.
- Speed & Structure: sources at 0, 74, 149, 224, 299 mirror to 299, 225, 150, 75, 0 — three shots
  are 1 m off; receivers at 0, 10, ..., 290, 299 (300 m snaps to the last cell) mirror to
  299, 289, ..., 9, 0, so every interior receiver is 1 m off.

Strategies (``flip_sample(..., strategy=)``):

- ``"nearest"`` (no velocity needed; inference TTA, cheap augmentation): every shot and receiver
  takes the data of the nearest mirrored one. Exact for mirror-symmetric shots; elsewhere the
  source or receiver is displaced by the offsets listed above (10 m for OpenFWI's middle shot,
  1 m for Speed & Structure), an approximation whose size the tests measure.
- ``"resimulate"`` (training augmentation, velocity known): shots without an exact mirror are
  re-simulated from the flipped velocity with ``seisinv.physics.simulate`` (all shots when the
  receivers do not mirror exactly). The result equals simulating the flipped velocity, up to the
  simulator's own floating-point error; mixing re-simulated shots with recorded ones carries the
  difference between ``simulate`` and the simulator that made the data.
- ``"auto"`` (the augmentation default): ``"resimulate"`` when the velocity is known and the
  receivers mirror exactly (only the unmatched shots are modelled: one 70 x 70 shot for OpenFWI,
  ~20 ms), else ``"nearest"`` (Speed & Structure, whose receivers do not mirror, would need a
  full ~11 s simulation per sample).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from seisinv.errors import DataError
from seisinv.survey import Survey

from .sample import Sample

Strategy = Literal["nearest", "resimulate", "auto"]
STRATEGIES = ("nearest", "resimulate", "auto")


@dataclass(frozen=True)
class MirrorMap:
    """Where each shot / receiver of the flipped survey takes its data from.

    Attributes:
        shots: (shots,) index of the original shot used for flipped shot ``i``.
        shots_exact: (shots,) True where that source sits exactly at the mirror position.
        shot_offset_m: (shots,) distance in metres between the used source's mirror and the
            wanted source.
        receivers, receivers_exact, receiver_offset_m: the same for receivers.
    """

    shots: np.ndarray
    shots_exact: np.ndarray
    shot_offset_m: np.ndarray
    receivers: np.ndarray
    receivers_exact: np.ndarray
    receiver_offset_m: np.ndarray

    @property
    def exact(self) -> bool:
        """True when the survey is mirror-symmetric on its grid (the flip is exact)."""
        return bool(self.shots_exact.all() and self.receivers_exact.all())


def _nearest_mirror(cells: np.ndarray, nx: int, dx: float):
    mirrored = (nx - 1) - cells  # mirror of each position in the same cell grid
    distance = np.abs(mirrored[None, :] - cells[:, None])  # [wanted i, available j]
    source = distance.argmin(axis=1)
    offset = distance[np.arange(len(cells)), source]
    return source, offset == 0, offset * dx


def mirror_map(survey: Survey) -> MirrorMap:
    """The shot and receiver mapping of a left-right flip on ``survey``'s grid (cell positions)."""
    shots, shots_exact, shot_offset = _nearest_mirror(survey.source_cells[:, 1], survey.nx,
                                                      survey.dx)
    rec, rec_exact, rec_offset = _nearest_mirror(survey.receiver_cells[:, 1], survey.nx, survey.dx)
    return MirrorMap(shots, shots_exact, shot_offset, rec, rec_exact, rec_offset)


def flip_velocity(velocity):
    """Mirror a velocity left-right: ``(..., nz, nx)`` depth first, numpy or torch, same units."""
    if isinstance(velocity, np.ndarray):
        return np.ascontiguousarray(velocity[..., ::-1])
    return velocity.flip(-1)


def flip_gathers(gathers, survey: Survey):
    """Gathers of the mirrored survey by the ``"nearest"`` strategy (see the module docstring).

    Args:
        gathers: (..., shots, time, receivers), numpy or torch (leading batch axes allowed).

    Returns:
        Same shape and type: shots in mirrored order, receivers reversed. Exact where
        ``mirror_map(survey)`` says so, a nearest-position approximation elsewhere.
    """
    shape = tuple(gathers.shape)
    if len(shape) < 3 or shape[-3] != survey.n_shots or shape[-1] != survey.n_receivers:
        raise DataError(f"flip_gathers: gathers of shape {tuple(gathers.shape)}, expected "
                        f"(..., {survey.n_shots}, time, {survey.n_receivers})")
    mapping = mirror_map(survey)
    out = gathers[..., mapping.shots, :, :][..., mapping.receivers]
    return np.ascontiguousarray(out) if isinstance(out, np.ndarray) else out.contiguous()


def resolve_strategy(survey: Survey, velocity_known: bool) -> str:
    """What ``"auto"`` means for ``survey``: ``"resimulate"`` when the velocity is known and the
    receivers mirror exactly, else ``"nearest"``."""
    cheap = mirror_map(survey).receivers_exact.all()
    return "resimulate" if velocity_known and cheap else "nearest"


def resimulated_shots(survey: Survey) -> np.ndarray:
    """Shots the ``"resimulate"`` strategy models: those without an exact mirror, or all of them
    when the receivers do not mirror exactly."""
    mapping = mirror_map(survey)
    if not mapping.receivers_exact.all():
        return np.arange(survey.n_shots)
    return np.flatnonzero(~mapping.shots_exact)


def flip_batch(gathers, velocity, survey: Survey, strategy: Strategy = "auto"):
    """``flip_sample`` for a batch of torch tensors, with one ``simulate`` call for all samples.

    Args:
        gathers: (batch, shots, time, receivers) raw gathers (before any transform).
        velocity: (batch, nz, nx) survey units, depth first, on the device to simulate on.
        strategy: as ``flip_sample`` (the velocity is known, so "auto" follows the survey).

    Returns:
        (flipped gathers, flipped velocity), same shapes, devices and dtypes: equal to
        ``flip_sample`` of each sample, the re-simulated shots of all samples modelled together.
    """
    if strategy not in STRATEGIES:
        raise DataError(f"flip strategy {strategy!r}; use {', '.join(STRATEGIES)}")
    flipped_velocity = flip_velocity(velocity)
    flipped = flip_gathers(gathers, survey)
    if strategy == "auto":
        strategy = resolve_strategy(survey, True)
    redo = resimulated_shots(survey) if strategy == "resimulate" else np.arange(0)
    if len(redo):
        import torch

        from seisinv.physics import simulate

        with torch.no_grad():
            simulated = simulate(flipped_velocity, survey, device=velocity.device,
                                 shots=redo.tolist())
        flipped = flipped.clone()
        flipped[:, torch.as_tensor(redo, device=flipped.device)] = simulated.to(flipped.dtype)
    return flipped, flipped_velocity


def flip_sample(
    sample: Sample,
    survey: Survey,
    strategy: Strategy = "nearest",
    device: str = "cpu",
) -> Sample:
    """The left-right mirror of a sample: velocity flipped, gathers by ``strategy``.

    Args:
        sample: gathers (shots, time, receivers); velocity (nz, nx) survey units or None.
        survey: the sample's survey.
        strategy: ``"nearest"``, ``"resimulate"`` (needs the velocity) or ``"auto"`` (see the
            module docstring).
        device: where ``"resimulate"`` runs the forward model.

    Returns:
        A new ``Sample`` with the same id, family and flags.
    """
    if strategy not in STRATEGIES:
        raise DataError(f"flip strategy {strategy!r}; use {', '.join(STRATEGIES)}")
    velocity = None if sample.velocity is None else flip_velocity(sample.velocity)
    gathers = flip_gathers(sample.gathers, survey)
    if strategy == "auto":
        strategy = resolve_strategy(survey, velocity is not None)
    if strategy == "resimulate":
        if velocity is None:
            raise DataError(f"sample {sample.id!r}: strategy 'resimulate' needs its velocity")
        redo = resimulated_shots(survey)
        if len(redo):
            from seisinv.physics import simulate

            simulated = simulate(velocity[None], survey, device=device, shots=redo.tolist())
            gathers = gathers.copy()
            gathers[redo] = simulated[0].cpu().numpy()
    return replace(sample, gathers=gathers, velocity=velocity)


def flip_source_slots(gathers, position: int, shots: int):
    """The Speed & Structure seed-001 flip on source *slots* (a zero slot for a missing mirror).

    Seed 001 feeds the five shots as six slots, sources 1, 75, 150, 151, 225, 300 (1-based x in
    metres), with slot 151 (the mirror of 150 on the 300 m line) all zeros. Mirroring reverses
    the slots and the receivers, so source 150's data lands in slot 151 and slot 150 becomes the
    zero one: every slot keeps its meaning (the source position it stands for).

    Args:
        gathers: (..., shots, time, receivers) numpy array: either the raw shots (``shots`` in
            survey order; the zero slot is inserted at ``position`` first) or already six slots.
        position: index of the zero slot in the unflipped layout (3 for seed 001).
        shots: the survey's shot count (5); ``shots + 1`` means the slots are already in.

    Returns:
        (..., shots + 1, time, receivers) float32: slots and receivers reversed.
    """
    from .transforms import insert_zero_shot

    slots = np.asarray(gathers)
    if slots.shape[-3] == shots:
        slots = insert_zero_shot(slots, position)
    return np.ascontiguousarray(slots[..., ::-1, :, ::-1], dtype=np.float32)


def flip_receivers(gathers):
    """Reverse the receiver axis only (the Speed & Structure 1st-place TTA, shots kept in order).

    ``(..., shots, time, receivers)`` numpy array -> same shape. Not the physical mirror (the
    shot order is not reversed); the public code of the 1st place flips this way.
    """
    return np.ascontiguousarray(np.asarray(gathers)[..., ::-1], dtype=np.float32)
