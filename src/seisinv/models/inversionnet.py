"""InversionNet: the OpenFWI baseline encoder-decoder (Wu & Lin 2019; Deng et al. 2022, OpenFWI).

Layer plan of the original (input ``(5 shots, 1000 time, 70 receivers)``, output 70 x 70):

- encoder: a (7, 1) convolution and six (3, 1) convolutions halve the *time* axis four times
  (1000 -> 63) without mixing receivers; then three pairs of 3 x 3 convolutions halve both axes
  (-> 8 x 9); a final convolution whose kernel covers the whole remaining map gives a
  ``(512, 1, 1)`` code.
- decoder: a transposed convolution grows the code to a 5 x 5 seed, four 2x transposed
  convolutions reach 80 x 80, the map is centre-cropped to 70 x 70 and a 3 x 3 convolution makes
  one channel.

Generalised here without hard-coded sizes: the time/receiver map before the code is adaptively
average-pooled to ``bottleneck`` (default ``(8, ceil(receivers / 8))``, the identity for OpenFWI
inputs), so any transformed input length works; the decoder seed is ``ceil(n / 2**stages)`` per
axis and ``upsample_stages`` (default: the fewest >= 4 that keep the seed at most 8 cells) reach
the survey grid, which is centre-cropped (or resized) to ``(nz, nx)``. ``decoder_scale`` > 1 lets
the decoder stop at a grid that many times coarser and resizes bilinearly (the full-resolution
decoder dominates the cost on the 1259 x 300 Speed & Structure grid). ``width`` scales every
channel count (0.25 trains on a CPU).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from seisinv.models.layers import Norm, conv_block, deconv_block, norm_layer
from seisinv.models.output import (
    OutputActivation,
    VelocityOutput,
    check_activation,
    check_gathers,
    fit_to_grid,
)
from seisinv.models.registry import MODELS
from seisinv.survey import Survey

BASE_CHANNELS = (32, 64, 128, 256, 512)
MAX_SEED_CELLS = 8


def default_upsample_stages(nz: int, nx: int) -> int:
    """Fewest 2x decoder stages (at least OpenFWI's four) whose seed is at most 8 cells a side."""
    stages = 4
    while math.ceil(max(nz, nx) / 2**stages) > MAX_SEED_CELLS:
        stages += 1
    return stages


class InversionNet(nn.Module):
    """Gathers ``(batch, shots, time, receivers)`` -> velocity ``(batch, nz, nx)`` survey units.

    Args:
        n_shots: input channels (one per shot).
        nz, nx: output grid, depth first.
        decoder_grid: (depth, horizontal) cells the decoder's map is cropped to before the last
            convolution; the output is resized from it to (nz, nx) when they differ.
        vmin, vmax: output velocity range in survey units.
        channels: the five channel counts (dim1..dim5 of OpenFWI).
        bottleneck: (time, receivers) size the encoder map is pooled to before the code.
        upsample_stages: number of 2x transposed-convolution stages in the decoder.
        norm: "batch", "instance" or "none".
        output_activation: see ``seisinv.models.output.bound_velocity``.
    """

    def __init__(
        self,
        n_shots: int,
        nz: int,
        nx: int,
        decoder_grid: tuple[int, int],
        vmin: float,
        vmax: float,
        channels: tuple[int, int, int, int, int],
        bottleneck: tuple[int, int],
        upsample_stages: int,
        norm: str,
        output_activation: str,
    ) -> None:
        super().__init__()
        d1, d2, d3, d4, d5 = channels
        self.n_shots = n_shots
        # Time-only convolutions (kernel (k, 1)) first: early layers see one trace at a time.
        self.encoder = nn.Sequential(
            conv_block(n_shots, d1, (7, 1), (2, 1), (3, 0), norm),
            conv_block(d1, d2, (3, 1), (2, 1), (1, 0), norm),
            conv_block(d2, d2, (3, 1), 1, (1, 0), norm),
            conv_block(d2, d2, (3, 1), (2, 1), (1, 0), norm),
            conv_block(d2, d2, (3, 1), 1, (1, 0), norm),
            conv_block(d2, d3, (3, 1), (2, 1), (1, 0), norm),
            conv_block(d3, d3, (3, 1), 1, (1, 0), norm),
            conv_block(d3, d3, 3, 2, 1, norm),
            conv_block(d3, d3, 3, 1, 1, norm),
            conv_block(d3, d4, 3, 2, 1, norm),
            conv_block(d4, d4, 3, 1, 1, norm),
            conv_block(d4, d4, 3, 2, 1, norm),
            conv_block(d4, d4, 3, 1, 1, norm),
        )
        self.pool = nn.AdaptiveAvgPool2d(tuple(bottleneck))
        # Instance norm of a 1 x 1 map is undefined (one value per channel): no norm there.
        code_norm = "none" if norm == "instance" else norm
        self.code = conv_block(d4, d5, tuple(bottleneck), 1, 0, code_norm)

        self.decoder_grid = tuple(decoder_grid)
        seed = tuple(math.ceil(n / 2**upsample_stages) for n in self.decoder_grid)
        stage_channels = ([d5] * max(upsample_stages - 4, 0) + [d4, d3, d2, d1])[-upsample_stages:]
        layers: list[nn.Module] = [
            deconv_block(d5, d5, seed, 1, 0, code_norm if seed == (1, 1) else norm),
            conv_block(d5, d5, 3, 1, 1, code_norm if seed == (1, 1) else norm),
        ]
        previous = d5
        for out in stage_channels:
            layers += [
                deconv_block(previous, out, 4, 2, 1, norm),
                conv_block(out, out, 3, 1, 1, norm),
            ]
            previous = out
        self.decoder = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Conv2d(previous, 1, 3, 1, 1, bias=False), norm_layer(norm, 1))
        self.output = VelocityOutput(nz, nx, vmin, vmax, output_activation)

    def forward(self, gathers: torch.Tensor) -> torch.Tensor:
        """``(batch, shots, time, receivers)`` -> ``(batch, nz, nx)`` velocity, depth first."""
        check_gathers(gathers, self.n_shots, "inversionnet")
        code = self.code(self.pool(self.encoder(gathers)))
        maps = fit_to_grid(self.decoder(code), *self.decoder_grid)
        return self.output(self.head(maps))


@MODELS.register("inversionnet")
def build_inversionnet(
    survey: Survey,
    *,
    pretrained: bool = False,
    width: float = 1.0,
    bottleneck: tuple[int, int] | None = None,
    upsample_stages: int | None = None,
    decoder_scale: int = 1,
    norm: Norm = "batch",
    output_activation: OutputActivation = "sigmoid",
) -> InversionNet:
    """OpenFWI's InversionNet sized for ``survey``.

    Args:
        survey: gives shots (input channels), the (nz, nx) grid and the velocity range.
        pretrained: accepted for a uniform interface; no pretrained weights exist (True fails).
        width: multiplier of the channel counts (32, 64, 128, 256, 512); 1.0 is the original
            (24.4 M parameters on OpenFWI), 0.25 a CPU-trainable version.
        bottleneck: (time, receivers) cells the encoder output is pooled to; default
            ``(8, ceil(n_receivers / 8))``.
        upsample_stages: 2x decoder stages; default: fewest >= 4 keeping the seed <= 8 cells.
        decoder_scale: the decoder builds a grid this many times coarser than (nz, nx), then the
            output is resized bilinearly (1: full resolution, as the original).
        norm: "batch" (original), "instance" or "none".
        output_activation: "sigmoid" (default), "tanh" or "clamp", scaled to [vmin, vmax].
    """
    if pretrained:
        raise ValueError("inversionnet has no pretrained weights; use pretrained=False")
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    check_activation(output_activation)
    channels = tuple(max(1, round(c * width)) for c in BASE_CHANNELS)
    if bottleneck is None:
        bottleneck = (8, math.ceil(survey.n_receivers / 8))
    if len(bottleneck) != 2 or min(bottleneck) < 1:
        raise ValueError(f"bottleneck must be two positive sizes, got {bottleneck}")
    if decoder_scale < 1:
        raise ValueError(f"decoder_scale must be >= 1, got {decoder_scale}")
    decoder_grid = (math.ceil(survey.nz / decoder_scale), math.ceil(survey.nx / decoder_scale))
    if upsample_stages is None:
        upsample_stages = default_upsample_stages(*decoder_grid)
    if upsample_stages < 1:
        raise ValueError(f"upsample_stages must be >= 1, got {upsample_stages}")
    norm_layer(norm, 1)  # validates the name before anything is built
    return InversionNet(
        survey.n_shots,
        survey.nz,
        survey.nx,
        decoder_grid,
        survey.vmin,
        survey.vmax,
        channels,
        tuple(bottleneck),
        upsample_stages,
        norm,
        output_activation,
    )
