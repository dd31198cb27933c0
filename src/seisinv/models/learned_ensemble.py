"""Learned-weight ensemble: several independently initialised members trained jointly (seed 004).

``members`` names registered gather models (repeats allowed, e.g. three ``xattn``); each is
built with ``member_options[name]`` from its own random initialisation. The prediction is
``sum_i w_i * member_i(gathers)`` with ``w = softmax(logits)``, the logits learned with the
members, so the weights stay non-negative and sum to one and the output stays inside
``[vmin, vmax]`` (a convex combination of bounded maps). Beside this, seisinv's post-hoc
ensemble (``seisinv ensemble``) fits weights to separately trained checkpoints.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from seisinv.models.output import check_gathers
from seisinv.models.registry import MODELS, create_model, model_input
from seisinv.survey import Survey

NOT_MEMBERS = ("learned_ensemble", "diffusion_vel")


class LearnedEnsemble(nn.Module):
    """Gathers ``(batch, shots, time, receivers)`` -> velocity ``(batch, nz, nx)`` survey units."""

    def __init__(self, members: list[nn.Module], n_shots: int) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.n_shots = n_shots
        self.logits = nn.Parameter(torch.zeros(len(members)))

    def weights(self) -> torch.Tensor:
        """``(n_members,)`` softmax weights, non-negative, summing to one."""
        return torch.softmax(self.logits, dim=0)

    def member_predictions(self, gathers: torch.Tensor) -> torch.Tensor:
        """``(n_members, batch, nz, nx)``: every member's velocity map."""
        check_gathers(gathers, self.n_shots, "learned_ensemble")
        return torch.stack([member(gathers).float() for member in self.members])

    def forward(self, gathers: torch.Tensor) -> torch.Tensor:
        """``(batch, shots, time, receivers)`` -> ``(batch, nz, nx)``, the weighted members."""
        predictions = self.member_predictions(gathers)
        return torch.einsum("m,mbzx->bzx", self.weights(), predictions)


@MODELS.register("learned_ensemble")
def build_learned_ensemble(
    survey: Survey,
    *,
    members: tuple[str, ...] = ("xattn", "xattn", "xattn"),
    member_options: dict[str, dict[str, Any]] | None = None,
    pretrained: bool = False,
) -> LearnedEnsemble:
    """A jointly trained, softmax-weighted ensemble of registered gather models.

    Args:
        survey: passed to every member.
        members: registered model names, one per member (repeats = independent inits; seed
            004 trains ``num_models`` = 3 in its example config, 5 by default).
        member_options: options per member name (e.g. ``{"xattn": {"embed_dim": 512}}``).
        pretrained: accepted for a uniform interface; members load their own weights through
            ``member_options`` (True fails).
    """
    if pretrained:
        raise ValueError("learned_ensemble has no pretrained weights; use pretrained=False")
    members = tuple(members)
    if len(members) < 2:
        raise ValueError(f"members needs at least two models, got {list(members)}")
    options = dict(member_options or {})
    unknown = sorted(set(options) - set(members))
    if unknown:
        raise ValueError(f"member_options for {unknown}, which are not in members {list(members)}")
    built = []
    for name in members:
        if name in NOT_MEMBERS or model_input(name) != "gathers":
            raise ValueError(f"members: {name!r} cannot be an ensemble member")
        built.append(create_model(name, survey, **options.get(name, {})))
    return LearnedEnsemble(built, survey.n_shots)
