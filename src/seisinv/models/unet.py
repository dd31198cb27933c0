"""U-Net on any timm ``features_only`` encoder, with the Speed & Structure 2nd-place output head.

The gathers become an image: time (resampled to ``input_height``) is the image height; shots are
either the channels (``shots_as="channels"``) or placed side by side along the width
(``shots_as="width"``, one channel). A timm encoder (``backbone``: caformer_s18, convnext_tiny,
efficientnet_b0, ...) gives multi-scale features; a U-Net decoder climbs back up, concatenating
the skip at each scale. The output head follows the S&S 2nd-place design: each decoder scale is
reduced by a 1 x 1 convolution, resized to the ``(nz, nx)`` grid, the scales are fused (concat +
3 x 3 convolution, sum, or the finest only) and projected to one channel, then bounded to the
survey's velocity range.

The seismic image is tall (many time samples, few receivers): ``first_stride`` replaces the stride
of the encoder's first convolution (e.g. (4, 1) keeps receiver resolution while squeezing time),
and ``time_reduction`` adds a learned (2r+1) x 1 strided convolution before the encoder.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from seisinv.models.backbones import create_backbone
from seisinv.models.layers import conv_block
from seisinv.models.output import OutputActivation, VelocityOutput, check_activation, check_gathers
from seisinv.models.registry import MODELS
from seisinv.survey import Survey

ShotsAs = Literal["channels", "width"]
Fusion = Literal["concat", "sum", "last"]


def gathers_to_image(gathers: torch.Tensor, height: int, width: int, shots_as: str) -> torch.Tensor:
    """``(batch, shots, time, receivers)`` -> image for a 2-D encoder (bilinear resampling).

    Returns:
        ``(batch, shots, height, width)`` for ``shots_as="channels"``, or
        ``(batch, 1, height, shots * width)`` for ``"width"`` (shot gathers side by side).
    """
    image = F.interpolate(gathers, size=(height, width), mode="bilinear", align_corners=False)
    if shots_as == "width":
        batch, shots = image.shape[:2]
        image = image.permute(0, 2, 1, 3).reshape(batch, 1, height, shots * width)
    return image


class DecoderStage(nn.Module):
    """Upsample to the skip's size, concatenate the skip, two 3 x 3 conv blocks."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            conv_block(in_channels + skip_channels, out_channels),
            conv_block(out_channels, out_channels),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.convs(torch.cat([x, skip], dim=1))


class ScaleFusionHead(nn.Module):
    """Decoder maps at several scales -> ``(batch, 1, nz, nx)`` logits (S&S 2nd-place head)."""

    def __init__(
        self, scale_channels: list[int], head_channels: int, nz: int, nx: int, fusion: str
    ) -> None:
        super().__init__()
        self.nz, self.nx, self.fusion = nz, nx, fusion
        used = scale_channels[-1:] if fusion == "last" else scale_channels
        self.reduce = nn.ModuleList(
            conv_block(c, head_channels, 1, 1, 0, norm="none") for c in used
        )
        fused = head_channels * len(used) if fusion == "concat" else head_channels
        self.project = nn.Sequential(
            conv_block(fused, head_channels, 3, 1, 1), nn.Conv2d(head_channels, 1, 1)
        )

    def forward(self, scales: list[torch.Tensor]) -> torch.Tensor:
        if self.fusion == "last":
            scales = scales[-1:]
        maps = [
            F.interpolate(reduce(x), size=(self.nz, self.nx), mode="bilinear", align_corners=False)
            for reduce, x in zip(self.reduce, scales, strict=True)
        ]
        fused = torch.cat(maps, dim=1) if self.fusion == "concat" else torch.stack(maps).sum(0)
        return self.project(fused)


class TimmUNet(nn.Module):
    """Gathers ``(batch, shots, time, receivers)`` -> velocity ``(batch, nz, nx)`` survey units.

    Built by ``build_unet``; see the module docstring for the layout.
    """

    def __init__(
        self,
        encoder: nn.Module,
        n_shots: int,
        nz: int,
        nx: int,
        vmin: float,
        vmax: float,
        input_height: int,
        input_width: int,
        shots_as: str,
        time_reduction: int,
        decoder_channels: int,
        head_channels: int,
        fusion: str,
        output_activation: str,
    ) -> None:
        super().__init__()
        self.n_shots, self.shots_as = n_shots, shots_as
        self.input_height, self.input_width = input_height, input_width
        in_chans = n_shots if shots_as == "channels" else 1
        self.pre_stem: nn.Module = nn.Identity()
        if time_reduction > 1:
            self.pre_stem = conv_block(
                in_chans,
                in_chans,
                (2 * time_reduction + 1, 1),
                (time_reduction, 1),
                (time_reduction, 0),
            )
        self.encoder = encoder
        self.channels_last = str(getattr(encoder, "output_fmt", "NCHW")).endswith("NHWC")
        channels = list(encoder.feature_info.channels())
        # Deepest feature first; each stage joins the next shallower skip.
        stages, previous, stage_channels = [], channels[-1], [channels[-1]]
        for skip in reversed(channels[:-1]):
            stages.append(DecoderStage(previous, skip, decoder_channels))
            previous = decoder_channels
            stage_channels.append(decoder_channels)
        self.decoder = nn.ModuleList(stages)
        self.head = ScaleFusionHead(stage_channels, head_channels, nz, nx, fusion)
        self.output = VelocityOutput(nz, nx, vmin, vmax, output_activation)

    def forward(self, gathers: torch.Tensor) -> torch.Tensor:
        """``(batch, shots, time, receivers)`` -> ``(batch, nz, nx)`` velocity, depth first."""
        check_gathers(gathers, self.n_shots, "unet")
        image = gathers_to_image(gathers, self.input_height, self.input_width, self.shots_as)
        features = self.encoder(self.pre_stem(image))
        if self.channels_last:
            features = [f.permute(0, 3, 1, 2) for f in features]
        x, scales = features[-1], [features[-1]]
        for stage, skip in zip(self.decoder, reversed(features[:-1]), strict=True):
            x = stage(x, skip)
            scales.append(x)
        return self.output(self.head(scales))


def _set_first_stride(encoder: nn.Module, stride: tuple[int, int]) -> None:
    """Give the encoder's first Conv2d an (anisotropic) stride (time, receivers)."""
    for module in encoder.modules():
        if isinstance(module, nn.Conv2d):
            module.stride = tuple(stride)
            return
    raise ValueError("first_stride: the backbone has no Conv2d stem")


@MODELS.register("unet")
def build_unet(
    survey: Survey,
    *,
    backbone: str = "convnext_tiny",
    pretrained: bool | str = False,
    encoder_depth: int | None = None,
    input_height: int = 256,
    input_width: int | None = None,
    shots_as: ShotsAs = "channels",
    first_stride: tuple[int, int] | None = None,
    time_reduction: int = 1,
    decoder_channels: int = 64,
    head_channels: int = 32,
    fusion: Fusion = "concat",
    output_activation: OutputActivation = "sigmoid",
) -> TimmUNet:
    """A timm-encoder U-Net sized for ``survey``.

    Args:
        survey: gives shots, the (nz, nx) grid and the velocity range.
        backbone: any timm model supporting ``features_only`` (caformer_s18, convnext_tiny,
            efficientnet_b0, resnet10t; ``test_convnext`` etc. for tests).
        pretrained: False, True (timm's hub or cache) or a local weights file path.
        encoder_depth: how many encoder scales to use (None: all); fewer = shallower decoder.
        input_height: time samples the gathers are resampled to (image height, pixels).
        input_width: receivers per shot after resampling (default ``max(32, receivers)``).
        shots_as: "channels" (shots are image channels) or "width" (side by side, 1 channel).
        first_stride: (time, receivers) stride replacing the first convolution's stride.
        time_reduction: stride of an extra learned time-only convolution before the encoder.
        decoder_channels: channels of every decoder stage.
        head_channels: channels each scale is reduced to in the output head.
        fusion: "concat", "sum" or "last" (finest scale only).
        output_activation: "sigmoid", "tanh" or "clamp", scaled to [vmin, vmax].
    """
    check_activation(output_activation)
    if shots_as not in ("channels", "width"):
        raise ValueError(f"shots_as {shots_as!r}; use 'channels' or 'width'")
    if fusion not in ("concat", "sum", "last"):
        raise ValueError(f"fusion {fusion!r}; use 'concat', 'sum' or 'last'")
    if min(input_height, decoder_channels, head_channels, time_reduction) < 1:
        raise ValueError(
            "input_height, decoder_channels, head_channels, time_reduction must be >= 1"
        )
    if input_width is None:
        input_width = max(32, survey.n_receivers)
    in_chans = survey.n_shots if shots_as == "channels" else 1
    extra = {} if encoder_depth is None else {"out_indices": tuple(range(encoder_depth))}
    encoder = create_backbone(backbone, pretrained, features_only=True, in_chans=in_chans, **extra)
    if first_stride is not None:
        _set_first_stride(encoder, first_stride)
    return TimmUNet(
        encoder,
        survey.n_shots,
        survey.nz,
        survey.nx,
        survey.vmin,
        survey.vmax,
        input_height,
        input_width,
        shots_as,
        time_reduction,
        decoder_channels,
        head_channels,
        fusion,
        output_activation,
    )
