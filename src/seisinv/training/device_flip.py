"""The exact flip augmentation on the training device, a batch at a time.

The ``flip`` augmentation re-simulates the shots that have no exact mirror (OpenFWI's middle
shot) from the mirrored velocity. In a DataLoader worker that is one small CPU simulation per
sample, which starves a GPU. With ``device_flip`` (by default on CUDA), the workers mirror by
index only and mark the sample (``flip_pending``); ``DeviceFlip`` then models the missing shots
of every marked sample of a batch in one ``simulate`` call on the training device and puts them,
through the fitted pipeline's torch form, into the network input. The result equals the CPU
path (``seisinv.data.flip.flip_sample``), which the tests check.

It applies when the ``flip`` step is the last augmentation and re-simulates shots, and the
pipeline only rescales amplitudes (``scale``, ``zscore``, ``clip``); otherwise the flip stays
in the workers (logged).
"""

from __future__ import annotations

import logging

import torch

from seisinv.errors import ConfigError
from seisinv.survey import Survey

log = logging.getLogger(__name__)


class DeviceFlip:
    """Replace the re-simulated shots of the flipped samples of a batch, on the device.

    Args:
        survey: the samples' survey.
        shots: the shots to model (``seisinv.data.flip.resimulated_shots``).
        transform: the fitted pipeline as a torch function (``differentiable_pipeline``).
    """

    def __init__(self, survey: Survey, shots, transform) -> None:
        self.survey = survey
        self.shots = [int(s) for s in shots]
        self.transform = transform

    @torch.no_grad()
    def __call__(self, inputs: torch.Tensor, velocity: torch.Tensor,
                 pending: torch.Tensor) -> torch.Tensor:
        """Inputs (B, S, T, R) after the pipeline, with the modelled shots of the samples whose
        ``pending`` (B,) host flag is set replaced; velocity (B, nz, nx) is already mirrored."""
        rows = torch.nonzero(pending.cpu()).flatten()  # host flags: no device wait
        if len(rows) == 0:
            return inputs
        from seisinv.physics import simulate

        device = inputs.device
        rows = rows.to(device, non_blocking=True)
        simulated = simulate(velocity[rows].float(), self.survey, device=device,
                             shots=self.shots)
        shots = torch.as_tensor(self.shots, device=device)
        inputs = inputs.clone()
        inputs[rows[:, None], shots[None, :]] = self.transform(simulated).to(inputs.dtype)
        return inputs


# Pipeline steps that keep the (shots, time, receivers) layout, so re-simulated shots can replace
# the mirrored ones in the transformed batch.
AMPLITUDE_STEPS = ("scale", "zscore", "clip")


def setup_device_flip(mode: bool | str, device: torch.device, dataset, pipeline,
                      survey: Survey) -> DeviceFlip | None:
    """Switch ``dataset``'s flip to the device when ``mode`` (True, False, or "auto": on CUDA)
    and the augmentation and pipeline allow it; returns the ``DeviceFlip`` or None."""
    augment = getattr(dataset, "augment", None)
    wanted = mode is True or (mode == "auto" and device.type == "cuda")
    if not wanted or augment is None or not hasattr(augment, "defer_flip"):
        return None
    from seisinv.training.losses import differentiable_pipeline

    steps = [step.name for step in getattr(pipeline, "steps", [])]
    try:
        if any(name not in AMPLITUDE_STEPS for name in steps):
            raise ConfigError("shape-changing step")
        transform = differentiable_pipeline(pipeline)
    except ConfigError:
        log.info("flip re-simulation stays in the DataLoader workers: data.transforms change "
                 "the gathers' shape")
        return None
    if not augment.defer_flip():
        log.info("flip re-simulation stays in the DataLoader workers (no final flip step "
                 "that re-simulates shots)")
        return None
    return DeviceFlip(survey, augment.flip_shots(), transform)
