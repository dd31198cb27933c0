"""What a run learns: the network's input and target in a batch, the loss, validation metrics.

- ``velocity`` (default): gathers ``(B, S', T', R')`` (after the data pipeline) -> velocity
  ``(B, nz, nx)`` survey units; the configured ``loss``; validated by MAE (survey units), MAPE (a
  fraction), SSIM (on the survey's range) and the loss.
- ``family``: velocity ``(B, nz, nx)`` survey units (the dataset's maps) -> logits
  ``(B, n_families)`` over ``model.families``; cross-entropy (the ``loss`` section is not used);
  validated by accuracy (a fraction) and the cross-entropy. Every sample's family must be one of
  ``model.families``.

A task's ``metrics`` are what validation reports per sample (then averaged overall and per
family); ``checkpoint.best_metric`` must be one of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from seisinv.errors import ConfigError, DataError
from seisinv.metrics import mae_per_sample, mape_per_sample, ssim_per_sample
from seisinv.survey import Survey
from seisinv.training.losses import Loss


class VelocityTask:
    """Gathers -> velocity map (see the module docstring)."""

    name = "velocity"
    metrics = ("mae", "mape", "ssim", "loss")

    def __init__(self, loss: Loss, survey: Survey) -> None:
        self.loss_fn, self.survey = loss, survey
        # A seisinv.training.device_flip.DeviceFlip when the flip is re-simulated on the device.
        self.flip = None

    def check_model(self, model) -> None:
        """Nothing to check: every registered model maps gathers to velocity."""

    def check_families(self, families: Sequence[str | None], where: str) -> None:
        """Any family (or none) is fine."""

    def batch(self, batch: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, target) on ``device``, copied without waiting (pinned host memory); the
        shots of deferred flips are modelled here (``DeviceFlip``)."""
        inputs = batch["gathers"].to(device, non_blocking=True)
        target = batch["velocity"].to(device, non_blocking=True)
        if self.flip is not None and "flip_pending" in batch:
            inputs = self.flip(inputs, target, batch["flip_pending"])
        return inputs, target

    def forward(self, model, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The training forward: ``model(inputs)``, or ``model(inputs, target)`` (the model's own
        per-sample loss, ``(batch,)``) for a loss the model computes (``MODEL_LOSS_TERMS``), so a
        DDP wrapper sees that computation as its forward."""
        return model(inputs, target) if self.loss_fn.model_loss else model(inputs)

    def loss(self, pred, target, inputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Scalar loss and each term's batch mean (detached tensors, read at logging time)."""
        return self.loss_fn(pred.float(), target, inputs)

    @torch.no_grad()
    def per_sample(self, pred, target, inputs) -> dict[str, torch.Tensor]:
        """``{metric: (B,) tensor}`` for validation."""
        pred, target = pred.float(), target.float()
        return {
            "mae": mae_per_sample(pred, target),
            "mape": mape_per_sample(pred, target),
            "ssim": ssim_per_sample(pred, target, self.survey.vmin, self.survey.vmax),
            "loss": self.loss_fn.per_sample(pred, target, inputs)[0],
        }


class FamilyTask:
    """Velocity map -> family logits (see the module docstring).

    Args:
        families: the model's ``families`` (class ``i`` is ``families[i]``).
    """

    name = "family"
    metrics = ("accuracy", "loss")

    def __init__(self, families: Sequence[str]) -> None:
        self.families = list(families)
        self.index = {name: i for i, name in enumerate(self.families)}

    @classmethod
    def for_model(cls, model) -> FamilyTask:
        families = getattr(model, "families", None)
        if not families or not all(isinstance(f, str) for f in families):
            raise ConfigError(
                f"task family: model {model.seisinv_config['name']!r} has no `families` list; "
                "use a family classifier (e.g. model.name=family_classifier)"
            )
        return cls(families)

    def check_model(self, model) -> None:
        """Already checked by ``for_model``."""

    def check_families(self, families: Sequence[str | None], where: str) -> None:
        """Refuse samples whose family the model does not classify.

        Raises:
            DataError: naming ``where`` (e.g. "data.train"), the unknown families and the known.
        """
        unknown = sorted({str(f) for f in families if f not in self.index})
        if unknown:
            raise DataError(
                f"{where}: task family needs every sample's family among the model's families "
                f"({', '.join(self.families)}); found {', '.join(unknown[:5])}"
                + (" (a sample without a family reads as 'None')" if "None" in unknown else "")
            )

    def batch(self, batch: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(velocity (B, nz, nx), class index (B,)) on ``device``; the indices are made on the
        host from the batch's family names, so nothing waits for the device."""
        target = torch.tensor([self.index[f] for f in batch["family"]], dtype=torch.long)
        return batch["velocity"].to(device, non_blocking=True), target.to(device, non_blocking=True)

    def forward(self, model, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The training forward: logits ``model(velocity)``."""
        return model(inputs)

    def loss(self, pred, target, inputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        value = F.cross_entropy(pred.float(), target)
        return value, {"cross_entropy": value.detach()}

    @torch.no_grad()
    def per_sample(self, pred, target, inputs) -> dict[str, torch.Tensor]:
        pred = pred.float()
        return {
            "accuracy": (pred.argmax(dim=1) == target).double(),
            "loss": F.cross_entropy(pred, target, reduction="none").double(),
        }


def build_task(name: str, model, loss: Loss, survey: Survey):
    """The task object of ``TrainConfig.task``."""
    if name == "family":
        return FamilyTask.for_model(model)
    return VelocityTask(loss, survey)
