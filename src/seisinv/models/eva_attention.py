"""EVA attention fusion: the Speed & Structure 1st-place design (``Flamethrower/`` public code).

Each shot image (after the ``fold_time`` transform, e.g. (100, 3100)) is resized bilinearly to
``image_size`` (560 x 560) and cut into ``patch_size`` patches (14: a 40 x 40 token grid). The first
``split`` EVA blocks run on every shot with shared weights; the shots are then fused per token by
multi-head attention across shots (``fusion="dual"``: a learned shot-position embedding,
pre-norm self-attention across shots with a residual, then attention of one learned query over the
shots, and a final LayerNorm; ``fusion="single"``: pre-norm self-attention across shots with a
residual, then the mean over shots). The remaining blocks run on the fused tokens. A linear head
maps each of the ``gh * gw`` patch tokens to ``nx`` values; the ``(nx, gh * gw)`` map is
area-resized to ``(nx, nz)`` (the token sequence becomes depth), transposed to depth first and
bounded to the survey's velocity range.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from timm.models.eva import Eva
from torch import nn

from seisinv.models.backbones import create_backbone
from seisinv.models.output import OutputActivation, bound_velocity, check_activation, check_gathers
from seisinv.models.registry import MODELS
from seisinv.survey import Survey

AttentionFusion = Literal["dual", "single"]


class ShotAttentionFusion(nn.Module):
    """Fuse per-shot tokens ``(batch, shots, tokens, dim)`` -> ``(batch, tokens, dim)``.

    Args:
        dim: token width.
        n_shots: shots fused (the learned shot-position embedding has one row per shot).
        mode: "dual" (self-attention across shots, then a learned query attends over them) or
            "single" (self-attention across shots, then the mean).
        shot_heads: heads of the attention across shots.
        query_heads: heads of the query attention ("dual" only).
    """

    def __init__(self, dim: int, n_shots: int, mode: str, shot_heads: int, query_heads: int):
        super().__init__()
        self.mode = mode
        self.shot_attention = nn.MultiheadAttention(dim, shot_heads, batch_first=True)
        if mode == "dual":
            self.shot_position = nn.Parameter(torch.randn(1, n_shots, dim))
            self.norm1 = nn.LayerNorm(dim)
            self.query = nn.Parameter(torch.randn(1, 1, dim))
            self.query_attention = nn.MultiheadAttention(dim, query_heads, batch_first=True)
            self.norm2 = nn.LayerNorm(dim)
        else:
            self.norm1 = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, shots, n_tokens, dim = tokens.shape
        x = tokens.permute(0, 2, 1, 3).reshape(batch * n_tokens, shots, dim)
        if self.mode == "dual":
            x = x + self.shot_position
        normed = self.norm1(x)
        x = x + self.shot_attention(normed, normed, normed, need_weights=False)[0]
        if self.mode == "single":
            return x.mean(dim=1).view(batch, n_tokens, dim)
        query = self.query.expand(batch * n_tokens, -1, -1)
        fused = self.query_attention(query, x, x, need_weights=False)[0]
        return self.norm2(fused.squeeze(1).view(batch, n_tokens, dim))


class EvaAttention(nn.Module):
    """Gathers ``(batch, shots, time, receivers)`` -> velocity ``(batch, nz, nx)`` survey units.

    Built by ``build_eva_attention``; see the module docstring.
    """

    def __init__(self, eva: Eva, n_shots: int, nz: int, nx: int, vmin: float, vmax: float,
                 split: int, fusion: ShotAttentionFusion, output_activation: str) -> None:
        super().__init__()
        self.eva, self.n_shots, self.split, self.fusion = eva, n_shots, split, fusion
        self.nz, self.nx, self.vmin, self.vmax = nz, nx, vmin, vmax
        self.output_activation = output_activation
        self.image_size = tuple(eva.patch_embed.img_size)
        self.head = nn.Linear(eva.embed_dim, nx)

    def forward(self, gathers: torch.Tensor) -> torch.Tensor:
        """``(batch, shots, time, receivers)`` -> ``(batch, nz, nx)`` velocity, depth first."""
        check_gathers(gathers, self.n_shots, "eva_attention")
        batch, shots = gathers.shape[:2]
        images = F.interpolate(gathers.reshape(batch * shots, 1, *gathers.shape[2:]),
                               size=self.image_size, mode="bilinear", align_corners=False)
        eva = self.eva
        tokens, rope = eva._pos_embed(eva.patch_embed(images))
        tokens = eva.norm_pre(tokens)
        for block in eva.blocks[: self.split]:
            tokens = block(tokens, rope=rope)
        tokens = self.fusion(tokens.view(batch, shots, *tokens.shape[1:]))
        for block in eva.blocks[self.split :]:
            tokens = block(tokens, rope=rope)
        tokens = eva.norm(tokens)[:, eva.num_prefix_tokens :]
        columns = self.head(tokens).permute(0, 2, 1)  # (batch, nx, tokens)
        maps = F.interpolate(columns[:, None].float(), size=(self.nx, self.nz), mode="area")
        return bound_velocity(maps[:, 0].transpose(1, 2), self.vmin, self.vmax,
                              self.output_activation)


@MODELS.register("eva_attention")
def build_eva_attention(
    survey: Survey,
    *,
    backbone: str | None = None,
    pretrained: bool | str = False,
    image_size: tuple[int, int] = (560, 560),
    patch_size: int = 14,
    embed_dim: int = 1024,
    depth: int = 24,
    num_heads: int = 16,
    split: int = 10,
    fusion: AttentionFusion = "dual",
    shot_heads: int = 4,
    query_heads: int = 2,
    drop_path_rate: float = 0.0,
    output_activation: OutputActivation = "sigmoid",
) -> EvaAttention:
    """The S&S 1st-place EVA with attention fusion across shots, sized for ``survey``.

    Args:
        survey: gives shots, the (nz, nx) grid and the velocity range.
        backbone: a timm EVA name (1st place: "eva02_large_patch14_448.mim_in22k_ft_in22k_in1k");
            its sizes replace embed_dim/depth/num_heads/patch_size. None: an EVA02-style ``Eva``
            from the options below (EVA02-L: 1024, 24, 16).
        pretrained: False, True (timm's hub or cache) or a local weights file (needs ``backbone``).
        image_size: (height, width) pixels each shot image is resized to (560 x 560).
        patch_size: ViT patch size in pixels (14: a 40 x 40 token grid at 560).
        embed_dim, depth, num_heads: transformer sizes when ``backbone`` is None.
        split: blocks applied per shot before the fusion (1st place: 10, one variant 9).
        fusion: "dual" (attention across shots, then a learned query) or "single" (attention
            across shots, then the mean).
        shot_heads: heads of the attention across shots (4; one variant 2 for ``query_heads``).
        query_heads: heads of the learned-query attention ("dual").
        drop_path_rate: stochastic depth for training.
        output_activation: "sigmoid", "tanh" or "clamp", scaled to [vmin, vmax].
    """
    check_activation(output_activation)
    if fusion not in ("dual", "single"):
        raise ValueError(f"fusion {fusion!r}; use 'dual' or 'single'")
    image_size = tuple(image_size)
    if backbone is not None:
        eva = create_backbone(backbone, pretrained, img_size=image_size, in_chans=1,
                              num_classes=0, drop_path_rate=drop_path_rate)
        if not isinstance(eva, Eva):
            raise ValueError(f"backbone {backbone!r} is not a timm EVA model")
    else:
        if pretrained:
            raise ValueError("pretrained weights need a timm EVA backbone name (backbone=...)")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        eva = Eva(img_size=image_size, patch_size=patch_size, in_chans=1, num_classes=0,
                  embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=4 * 2 / 3,
                  swiglu_mlp=True, use_rot_pos_emb=True,
                  ref_feat_shape=(image_size[0] // patch_size, image_size[1] // patch_size),
                  drop_path_rate=drop_path_rate)
    eva.fc_norm, eva.attn_pool = nn.Identity(), None
    if not 0 <= split <= len(eva.blocks):
        raise ValueError(f"split must be in 0..{len(eva.blocks)} (the depth), got {split}")
    dim = eva.embed_dim
    for heads, name in ((shot_heads, "shot_heads"), (query_heads, "query_heads")):
        if heads < 1 or dim % heads:
            raise ValueError(f"{name} {heads} must divide the token width {dim}")
    fuse = ShotAttentionFusion(dim, survey.n_shots, fusion, shot_heads, query_heads)
    return EvaAttention(eva, survey.n_shots, survey.nz, survey.nx, survey.vmin, survey.vmax,
                        split, fuse, output_activation)
