"""EVA fusion: the Speed & Structure EVA02 design (per-shot ViT blocks, fused across shots).

Each shot gather ``(time, receivers)`` is resampled to an ``image_size`` image and cut into
``patch_size`` patches (EVA02: 14). The first ``split`` EVA blocks (rotary position embedding,
SwiGLU MLP) run on every shot separately with shared weights; a learned per-shot embedding tells
them which source they see. The shot token sets are then fused, by a mean or by a learned softmax
over shots per token (``fusion="attention"``), and the remaining blocks run on the fused tokens.
A linear head turns each patch token into an ``rz x rx`` block of velocities (an anisotropic
PixelShuffle), giving a map of ``(grid_h * rz, grid_w * rx) >= (nz, nx)`` that is centre-cropped
(or resized) to the survey grid and bounded to its velocity range.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from timm.models.eva import Eva
from torch import nn

from seisinv.models.backbones import create_backbone
from seisinv.models.output import OutputActivation, VelocityOutput, check_activation, check_gathers
from seisinv.models.registry import MODELS
from seisinv.survey import Survey

ShotFusion = Literal["mean", "attention"]


def pixel_shuffle_2d(tokens: torch.Tensor, grid: tuple[int, int], block: tuple[int, int]):
    """Anisotropic PixelShuffle: ``(batch, gh * gw, rz * rx)`` -> ``(batch, 1, gh * rz, gw * rx)``.

    Token ``(i, j)`` of the ``grid`` fills rows ``i*rz .. (i+1)*rz`` and columns
    ``j*rx .. (j+1)*rx`` of the output map.
    """
    (gh, gw), (rz, rx) = grid, block
    batch = tokens.shape[0]
    blocks = tokens.reshape(batch, gh, gw, rz, rx).permute(0, 1, 3, 2, 4)
    return blocks.reshape(batch, 1, gh * rz, gw * rx)


class EvaFusion(nn.Module):
    """Gathers ``(batch, shots, time, receivers)`` -> velocity ``(batch, nz, nx)`` survey units.

    Args:
        eva: a timm ``Eva`` with ``in_chans=1`` (its patch embedding, position embeddings and
            blocks are used; its classifier head is not).
        n_shots, nz, nx, vmin, vmax: from the survey.
        split: number of blocks run per shot before fusion.
        fusion: "mean" or "attention" (learned softmax weights over shots, per token).
        shot_embedding: add a learned embedding per shot before the per-shot blocks.
        output_activation: see ``seisinv.models.output.bound_velocity``.
    """

    def __init__(
        self,
        eva: Eva,
        n_shots: int,
        nz: int,
        nx: int,
        vmin: float,
        vmax: float,
        split: int,
        fusion: str,
        shot_embedding: bool,
        output_activation: str,
    ) -> None:
        super().__init__()
        self.eva, self.n_shots, self.split, self.fusion = eva, n_shots, split, fusion
        dim = eva.embed_dim
        self.image_size = tuple(eva.patch_embed.img_size)
        self.grid = tuple(eva.patch_embed.grid_size)
        self.shot_embed = nn.Parameter(torch.zeros(n_shots, dim)) if shot_embedding else None
        if self.shot_embed is not None:
            nn.init.trunc_normal_(self.shot_embed, std=0.02)
        self.shot_score = nn.Linear(dim, 1) if fusion == "attention" else None
        self.block = (math.ceil(nz / self.grid[0]), math.ceil(nx / self.grid[1]))
        self.head = nn.Linear(dim, self.block[0] * self.block[1])
        self.output = VelocityOutput(nz, nx, vmin, vmax, output_activation)

    def forward(self, gathers: torch.Tensor) -> torch.Tensor:
        """``(batch, shots, time, receivers)`` -> ``(batch, nz, nx)`` velocity, depth first."""
        check_gathers(gathers, self.n_shots, "eva_fusion")
        batch, shots = gathers.shape[:2]
        images = F.interpolate(
            gathers.reshape(batch * shots, 1, *gathers.shape[2:]),
            size=self.image_size,
            mode="bilinear",
            align_corners=False,
        )
        eva = self.eva
        tokens = eva.patch_embed(images)
        # timm's own position handling: absolute embedding, prefix token, rotary table.
        tokens, rope = eva._pos_embed(tokens)
        tokens = eva.norm_pre(tokens)
        n_tokens, dim = tokens.shape[1:]
        if self.shot_embed is not None:
            tokens = (tokens.view(batch, shots, n_tokens, dim) + self.shot_embed[:, None]).flatten(
                0, 1
            )
        for block in eva.blocks[: self.split]:
            tokens = block(tokens, rope=rope)
        per_shot = tokens.view(batch, shots, n_tokens, dim)
        if self.shot_score is None:
            tokens = per_shot.mean(dim=1)
        else:
            weights = torch.softmax(self.shot_score(per_shot), dim=1)
            tokens = (weights * per_shot).sum(dim=1)
        for block in eva.blocks[self.split :]:
            tokens = block(tokens, rope=rope)
        tokens = eva.norm(tokens)[:, eva.num_prefix_tokens :]
        logits = pixel_shuffle_2d(self.head(tokens), self.grid, self.block)
        return self.output(logits)


@MODELS.register("eva_fusion")
def build_eva_fusion(
    survey: Survey,
    *,
    backbone: str | None = None,
    pretrained: bool | str = False,
    image_size: tuple[int, int] = (224, 224),
    patch_size: int = 14,
    embed_dim: int = 384,
    depth: int = 12,
    num_heads: int = 6,
    split: int = 4,
    fusion: ShotFusion = "mean",
    shot_embedding: bool = True,
    drop_path_rate: float = 0.0,
    output_activation: OutputActivation = "sigmoid",
    shots: int | None = None,
) -> EvaFusion:
    """EVA02-style per-shot / fused transformer sized for ``survey``.

    Args:
        survey: gives shots, the (nz, nx) grid and the velocity range.
        backbone: a timm EVA model name (e.g. "eva02_base_patch14_224.mim_in22k"); its sizes
            replace embed_dim/depth/num_heads/patch_size. None: build an EVA02-style ``Eva``
            from the options below.
        pretrained: False, True (timm's hub or cache) or a local weights file (needs ``backbone``).
        image_size: (height = time, width = receivers) pixels each shot gather is resampled to.
        patch_size: ViT patch size in pixels (EVA02: 14).
        embed_dim, depth, num_heads: transformer sizes (EVA02-S: 384, 12, 6; -B: 768, 12, 12).
        split: blocks applied per shot before fusing (0 <= split <= depth).
        fusion: "mean" (as the winners) or "attention" (learned weights over shots per token).
        shot_embedding: add a learned per-shot embedding (tells shared blocks the source).
        drop_path_rate: stochastic depth for training.
        output_activation: "sigmoid", "tanh" or "clamp", scaled to [vmin, vmax].
        shots: shot images per sample after the transforms (None: the survey's shots); seed 001
            feeds 6 source slots (``source_slots`` transform) for the survey's 5 shots.
    """
    check_activation(output_activation)
    if shots is not None and shots < 1:
        raise ValueError(f"shots must be at least 1, got {shots}")
    if fusion not in ("mean", "attention"):
        raise ValueError(f"fusion {fusion!r}; use 'mean' or 'attention'")
    image_size = tuple(image_size)
    if backbone is not None:
        eva = create_backbone(
            backbone,
            pretrained,
            img_size=image_size,
            in_chans=1,
            num_classes=0,
            drop_path_rate=drop_path_rate,
        )
        if not isinstance(eva, Eva):
            raise ValueError(f"backbone {backbone!r} is not a timm EVA model")
    else:
        if pretrained:
            raise ValueError("pretrained=True needs a timm EVA backbone name (backbone=...)")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        eva = Eva(
            img_size=image_size,
            patch_size=patch_size,
            in_chans=1,
            num_classes=0,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=4 * 2 / 3,
            swiglu_mlp=True,
            use_rot_pos_emb=True,
            ref_feat_shape=(image_size[0] // patch_size, image_size[1] // patch_size),
            drop_path_rate=drop_path_rate,
        )
    # The classifier's pooling norm and pooler are never used: drop them so every parameter
    # trains (and none sits untouched in checkpoints).
    eva.fc_norm, eva.attn_pool = nn.Identity(), None
    if not 0 <= split <= len(eva.blocks):
        raise ValueError(f"split must be in 0..{len(eva.blocks)} (the depth), got {split}")
    return EvaFusion(
        eva,
        survey.n_shots if shots is None else shots,
        survey.nz,
        survey.nx,
        survey.vmin,
        survey.vmax,
        split,
        fusion,
        shot_embedding,
        output_activation,
    )
