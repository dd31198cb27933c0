"""Family classifier: a velocity map ``(batch, nz, nx)`` in survey units -> family logits.

The Kaggle GWI 4th place (seed 003) and the 1st place route test samples by predicted family;
``seisinv ensemble --per-family`` uses this model on a prediction to pick per-family weights.
The map is normalised to ``[0, 1]`` by the survey's velocity range, passed through ``depth``
stride-2 convolution blocks (3 x 3, BatchNorm, LeakyReLU; width doubling from ``width``), pooled
globally (mean and max, so both smooth and sharp families are seen) and classified by a linear
layer. ``model.families`` (the ``families`` option, stored in ``seisinv_config``) names the
logits' columns; the trainer's ``task: family`` feeds velocity maps and family indices.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from seisinv.errors import DataError
from seisinv.models.layers import conv_block
from seisinv.models.registry import MODEL_INPUTS, MODELS
from seisinv.survey import Survey

# The ten OpenFWI families of the Kaggle GWI training set.
GWI_FAMILIES: tuple[str, ...] = (
    "CurveFault_A",
    "CurveFault_B",
    "CurveVel_A",
    "CurveVel_B",
    "FlatFault_A",
    "FlatFault_B",
    "FlatVel_A",
    "FlatVel_B",
    "Style_A",
    "Style_B",
)


class FamilyClassifier(nn.Module):
    """Velocity ``(batch, nz, nx)`` survey units -> logits ``(batch, len(families))``."""

    def __init__(
        self,
        families: list[str],
        nz: int,
        nx: int,
        vmin: float,
        vmax: float,
        width: int,
        depth: int,
    ) -> None:
        super().__init__()
        self.families = list(families)
        self.nz, self.nx, self.vmin, self.vmax = nz, nx, vmin, vmax
        layers, channels = [], 1
        for level in range(depth):
            out = width * 2**level
            layers += [conv_block(channels, out, 3, 2, 1), conv_block(out, out)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.classify = nn.Linear(2 * channels, len(self.families))

    def forward(self, velocity: torch.Tensor) -> torch.Tensor:
        """``(batch, nz, nx)`` velocities (survey units) -> ``(batch, n_families)`` logits."""
        if velocity.ndim != 3 or tuple(velocity.shape[1:]) != (self.nz, self.nx):
            raise DataError(
                f"family_classifier expects velocity (batch, {self.nz}, {self.nx}); "
                f"got shape {tuple(velocity.shape)}"
            )
        unit = (velocity.float() - self.vmin) / (self.vmax - self.vmin)
        maps = self.features(unit[:, None])
        pooled = torch.cat([maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))], dim=1)
        return self.classify(pooled)


def classify(model: FamilyClassifier, velocity) -> list[str]:
    """Family names of velocity maps ``(batch, nz, nx)`` or one ``(nz, nx)`` map (numpy or torch).

    Runs ``model`` in eval mode without gradients on its own device; restores its mode.
    """
    tensor = torch.as_tensor(np.asarray(velocity) if not torch.is_tensor(velocity) else velocity)
    if tensor.ndim == 2:
        tensor = tensor[None]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            index = model(tensor.to(device)).argmax(dim=1).tolist()
    finally:
        model.train(was_training)
    return [model.families[i] for i in index]


@MODELS.register("family_classifier")
def build_family_classifier(
    survey: Survey,
    *,
    families: tuple[str, ...] = GWI_FAMILIES,
    width: int = 32,
    depth: int = 4,
    pretrained: bool = False,
) -> FamilyClassifier:
    """A CNN classifying velocity maps of ``survey``'s grid into ``families``.

    Args:
        survey: gives the (nz, nx) grid and the velocity range used to normalise the input.
        families: the class names, in logit order (default: the ten Kaggle GWI families).
        width: channels of the first block (doubling per level).
        depth: stride-2 levels.
        pretrained: accepted for a uniform interface; no pretrained weights exist (True fails).
    """
    if pretrained:
        raise ValueError("family_classifier has no pretrained weights; use pretrained=False")
    families = list(families)
    if len(families) < 2 or len(set(families)) != len(families):
        raise ValueError(f"families needs at least two distinct names, got {families}")
    if width < 1 or depth < 1:
        raise ValueError(f"width and depth must be >= 1, got {width}, {depth}")
    return FamilyClassifier(families, survey.nz, survey.nx, survey.vmin, survey.vmax, width, depth)


MODEL_INPUTS["family_classifier"] = "velocity"
