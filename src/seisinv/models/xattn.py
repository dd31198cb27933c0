"""Cross-attention transformer: per-shot multi-scale convolutions, attention across sources, and a
transformer decoder whose queries are the cells of a coarse output grid.

1. Every shot gather ``(time, receivers)`` goes through parallel time-only convolutions with
   several kernel lengths (``time_kernels``, catching short and long wavelets), then 3 x 3
   convolutions that halve time twice; the map is average-pooled to ``token_grid``
   (time x receiver tokens) and projected to ``embed_dim``. Learned embeddings mark each token's
   (time, receiver) cell and its shot.
2. ``encoder_layers`` pairs of attention layers alternate: tokens of one shot attend to each
   other, then the tokens at the same (time, receiver) cell attend across the shots
   (cross-source attention).
3. A transformer decoder with learned positional queries, one per cell of a coarse output grid
   (at most ``max_queries`` cells, the survey grid divided by a power of two), attends to all
   tokens of all shots.
4. ``head="conv"``: the query map is upsampled by 2x bilinear + 3 x 3 convolution stages to the
   survey grid. ``head="mlp"`` (seed 004's decoder): an MLP turns each query into the
   ``f x f`` block of velocities of its coarse cell (a PixelShuffle), and the output activation
   is typically ``softplus`` (seed 004's "SoftPlus + offset"). Either map is centre-cropped to
   ``(nz, nx)`` and bounded to the velocity range.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from seisinv.models.layers import conv_block
from seisinv.models.output import OutputActivation, VelocityOutput, check_activation, check_gathers
from seisinv.models.registry import MODELS
from seisinv.survey import Survey

XattnHead = Literal["conv", "mlp"]


def coarse_grid(nz: int, nx: int, max_queries: int) -> tuple[int, int, int]:
    """Smallest power-of-two factor ``f`` with ``ceil(nz/f) * ceil(nx/f) <= max_queries``.

    Returns:
        ``(gz, gx, stages)``: the coarse grid (depth first) and ``log2(f)`` upsampling stages.
    """
    stages = 0
    while math.ceil(nz / 2**stages) * math.ceil(nx / 2**stages) > max_queries:
        stages += 1
    return math.ceil(nz / 2**stages), math.ceil(nx / 2**stages), stages


class MultiScaleTimeConv(nn.Module):
    """``(n, 1, time, receivers)`` -> ``(n, channels, time / stride, receivers)``.

    Parallel (k, 1) convolutions, one per kernel length, concatenated and normalised.
    """

    def __init__(self, kernels: tuple[int, ...], channels: int, stride: int) -> None:
        super().__init__()
        per_branch = max(1, channels // len(kernels))
        self.branches = nn.ModuleList(
            nn.Conv2d(1, per_branch, (k, 1), (stride, 1), (k // 2, 0), bias=False) for k in kernels
        )
        self.norm = nn.BatchNorm2d(per_branch * len(kernels))
        self.out_channels = per_branch * len(kernels)

    def forward(self, traces: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.norm(torch.cat([branch(traces) for branch in self.branches], dim=1)))


class ShotAndSourceAttention(nn.Module):
    """Attention within each shot's tokens, then across shots at each token cell.

    ``(batch, shots, tokens, dim)`` -> same shape.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()

        def layer() -> nn.TransformerEncoderLayer:
            return nn.TransformerEncoderLayer(
                dim,
                num_heads,
                int(dim * mlp_ratio),
                dropout,
                "gelu",
                batch_first=True,
                norm_first=True,
            )

        self.within_shot, self.across_shots = layer(), layer()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, shots, n_tokens, dim = tokens.shape
        tokens = self.within_shot(tokens.reshape(batch * shots, n_tokens, dim))
        tokens = tokens.view(batch, shots, n_tokens, dim).transpose(1, 2)
        tokens = self.across_shots(tokens.reshape(batch * n_tokens, shots, dim))
        return tokens.view(batch, n_tokens, shots, dim).transpose(1, 2)


class CrossAttentionNet(nn.Module):
    """Gathers ``(batch, shots, time, receivers)`` -> velocity ``(batch, nz, nx)`` survey units.

    Built by ``build_xattn``; see the module docstring for the layout.
    """

    def __init__(
        self,
        n_shots: int,
        nz: int,
        nx: int,
        vmin: float,
        vmax: float,
        conv_channels: int,
        time_kernels: tuple[int, ...],
        time_stride: int,
        token_grid: tuple[int, int],
        embed_dim: int,
        num_heads: int,
        encoder_layers: int,
        decoder_layers: int,
        mlp_ratio: float,
        dropout: float,
        max_queries: int,
        output_activation: str,
        head: str = "conv",
    ) -> None:
        super().__init__()
        self.n_shots, self.head = n_shots, head
        stem = MultiScaleTimeConv(time_kernels, conv_channels, time_stride)
        self.features = nn.Sequential(
            stem,
            conv_block(stem.out_channels, conv_channels, 3, (2, 1), 1),
            conv_block(conv_channels, 2 * conv_channels, 3, (2, 1), 1),
            nn.AdaptiveAvgPool2d(tuple(token_grid)),
            nn.Conv2d(2 * conv_channels, embed_dim, 1),
        )
        n_tokens = token_grid[0] * token_grid[1]
        self.token_pos = nn.Parameter(torch.zeros(1, 1, n_tokens, embed_dim))
        self.shot_embed = nn.Parameter(torch.zeros(1, n_shots, 1, embed_dim))
        self.encoder = nn.ModuleList(
            ShotAndSourceAttention(embed_dim, num_heads, mlp_ratio, dropout)
            for _ in range(encoder_layers)
        )
        self.memory_norm = nn.LayerNorm(embed_dim)

        gz, gx, stages = coarse_grid(nz, nx, max_queries)
        self.query_grid = (gz, gx)
        self.queries = nn.Parameter(torch.zeros(1, gz * gx, embed_dim))
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(
                embed_dim,
                num_heads,
                int(embed_dim * mlp_ratio),
                dropout,
                "gelu",
                batch_first=True,
                norm_first=True,
            ),
            decoder_layers,
        )
        self.query_norm = nn.LayerNorm(embed_dim)
        self.block = 2**stages
        if head == "mlp":
            self.mlp_head = nn.Sequential(
                nn.Linear(embed_dim, embed_dim),
                nn.GELU(),
                nn.Linear(embed_dim, self.block * self.block),
            )
        else:
            upsample: list[nn.Module] = []
            channels = embed_dim
            for _ in range(stages):
                out = max(conv_channels, channels // 2)
                upsample += [
                    nn.Upsample(scale_factor=2, mode="bilinear"),
                    conv_block(channels, out),
                ]
                channels = out
            self.upsample = nn.Sequential(*upsample, nn.Conv2d(channels, 1, 3, 1, 1))
        self.output = VelocityOutput(nz, nx, vmin, vmax, output_activation)
        for embedding in (self.token_pos, self.shot_embed, self.queries):
            nn.init.trunc_normal_(embedding, std=0.02)

    def forward(self, gathers: torch.Tensor) -> torch.Tensor:
        """``(batch, shots, time, receivers)`` -> ``(batch, nz, nx)`` velocity, depth first."""
        check_gathers(gathers, self.n_shots, "xattn")
        batch, shots = gathers.shape[:2]
        maps = self.features(gathers.reshape(batch * shots, 1, *gathers.shape[2:]))
        tokens = maps.flatten(2).transpose(1, 2).reshape(batch, shots, -1, maps.shape[1])
        tokens = tokens + self.token_pos + self.shot_embed
        for layer in self.encoder:
            tokens = layer(tokens)
        memory = self.memory_norm(tokens.flatten(1, 2))
        queries = self.query_norm(self.decoder(self.queries.expand(batch, -1, -1), memory))
        if self.head == "mlp":
            (gz, gx), f = self.query_grid, self.block
            blocks = self.mlp_head(queries).reshape(batch, gz, gx, f, f).permute(0, 1, 3, 2, 4)
            return self.output(blocks.reshape(batch, 1, gz * f, gx * f))
        grid = queries.transpose(1, 2).reshape(batch, -1, *self.query_grid)
        return self.output(self.upsample(grid))


@MODELS.register("xattn")
def build_xattn(
    survey: Survey,
    *,
    pretrained: bool = False,
    conv_channels: int = 32,
    time_kernels: tuple[int, ...] = (7, 15, 31),
    time_stride: int = 4,
    token_grid: tuple[int, int] = (16, 8),
    embed_dim: int = 256,
    num_heads: int = 8,
    encoder_layers: int = 4,
    decoder_layers: int = 4,
    mlp_ratio: float = 4.0,
    dropout: float = 0.0,
    max_queries: int = 256,
    head: XattnHead = "conv",
    output_activation: OutputActivation = "sigmoid",
) -> CrossAttentionNet:
    """Cross-source attention transformer sized for ``survey``.

    Args:
        survey: gives shots, the (nz, nx) grid and the velocity range.
        pretrained: accepted for a uniform interface; no pretrained weights exist (True fails).
        conv_channels: channels of the per-shot convolutions (the multi-scale stem splits them
            between the kernels).
        time_kernels: lengths in samples of the parallel time-only convolutions.
        time_stride: time stride of the multi-scale stem (the two conv blocks halve time again).
        token_grid: (time, receivers) tokens per shot after pooling.
        embed_dim, num_heads: transformer width and heads.
        encoder_layers: within-shot + across-shot attention pairs.
        decoder_layers: transformer decoder layers over the output-grid queries.
        mlp_ratio, dropout: transformer MLP width factor and dropout.
        max_queries: most output-grid queries; the grid is the survey grid over a power of two.
        head: "conv" (bilinear + conv upsampling of the query map) or "mlp" (seed 004: an MLP
            per query gives its cell's block of velocities).
        output_activation: "sigmoid", "tanh", "clamp" or "softplus" (seed 004's SoftPlus +
            offset), scaled to [vmin, vmax].
    """
    check_activation(output_activation)
    if pretrained:
        raise ValueError("xattn has no pretrained weights; use pretrained=False")
    if embed_dim % num_heads:
        raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
    if not time_kernels or min(time_kernels) < 1:
        raise ValueError(f"time_kernels must be positive lengths, got {time_kernels}")
    if head not in ("conv", "mlp"):
        raise ValueError(f"head {head!r}; use 'conv' or 'mlp'")
    if len(token_grid) != 2 or min(token_grid) < 1 or max_queries < 1 or time_stride < 1:
        raise ValueError("token_grid, max_queries and time_stride must be positive")
    return CrossAttentionNet(
        survey.n_shots,
        survey.nz,
        survey.nx,
        survey.vmin,
        survey.vmax,
        conv_channels,
        tuple(time_kernels),
        time_stride,
        tuple(token_grid),
        embed_dim,
        num_heads,
        encoder_layers,
        decoder_layers,
        mlp_ratio,
        dropout,
        max_queries,
        output_activation,
        head,
    )
