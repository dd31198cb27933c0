"""ConvNeXt U-Net of the Kaggle GWI ConvNeXt baseline and its enhanced version (seed 002).

The five shot gathers are the five channels of one image (time = height, receivers = width). A
named ``input_mode`` fixes how the gathers become that image and how the encoder's stem squeezes
time so the stem output is about square:

- ``full`` (the public baseline): native resolution, reflection padding of 80 time samples at
  the top and bottom and 1 receiver each side (OpenFWI: 1000 x 70 -> 1160 x 72); the stem's
  4 x 4 convolution gets stride (4, 1) and a second 4 x 4 convolution of stride (4, 1) follows
  it (-> 72 x 72 at the stem for OpenFWI).
- ``256x72`` (seed 002's "smart" mode): keep the first 512 time samples, resample to 256 x 70,
  reflection-pad the receivers to 72 (-> 256 x 72); stem stride (4, 1) then a (2, 2) convolution
  (-> 32 x 36).
- ``72x72`` (seed 002): resample to 72 x 72; stem stride (2, 2) (-> 36 x 36).

A timm ``features_only`` encoder (any ConvNeXt; ImageNet weights with ``pretrained=True`` or a
local weights file) gives multi-scale features; by default its norms become InstanceNorm as in the
baseline. The U-Net decoder climbs back with 2x transposed convolutions and skip concatenation.
Its outputs ``[deepest, stage 1, ..., finest]`` can be selected by index (``decoder_layers``,
negative from the finest) and fused with fixed or learned (softmax) weights after a 1 x 1 channel
adapter and a resize to the finest scale. The head (3 x 3 conv, InstanceNorm, GELU, 3 x 3 conv
to one channel) ends in learned size adapters that give exactly ``(nz, nx)`` without cropping:
a ``(k, 1)`` / ``(1, k)`` transposed convolution grows an axis by ``k - 1``, a valid convolution
shrinks it by ``k - 1`` (OpenFWI: 72 x 72 -> 70 x 70 by two 3-tap valid convolutions).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from seisinv.models.backbones import cached_weights, create_backbone
from seisinv.models.output import OutputActivation, VelocityOutput, check_activation, check_gathers
from seisinv.models.registry import MODELS
from seisinv.survey import Survey

log = logging.getLogger(__name__)

InputMode = Literal["full", "256x72", "72x72"]
FusionMode = Literal["fixed", "learned"]
MAX_ADAPTER_GROWTH = 16  # most rows/columns a learned size adapter adds or removes per axis

# One place for the three presets: how the gathers become the image and how the stem strides.
INPUT_MODES: dict[str, dict] = {
    "full": {
        "time_crop": None,
        "image_size": None,
        "pad": (1, 1, 80, 80),  # (left, right, top, bottom) reflection padding
        "stem_stride": (4, 1),
        "stem_padding": (0, 2),
        "extra_stride": (4, 1),
        "extra_padding": (0, 1),
    },
    "256x72": {
        "time_crop": 512,
        "image_size": (256, 70),
        "pad": (1, 1, 0, 0),
        "stem_stride": (4, 1),
        "stem_padding": (0, 2),
        "extra_stride": (2, 2),
        "extra_padding": (1, 1),
    },
    "72x72": {
        "time_crop": None,
        "image_size": (72, 72),
        "pad": (0, 0, 0, 0),
        "stem_stride": (2, 2),
        "stem_padding": (1, 1),
        "extra_stride": None,
        "extra_padding": None,
    },
}


def prepare_image(gathers: torch.Tensor, mode: str) -> torch.Tensor:
    """``(batch, shots, time, receivers)`` -> the encoder's ``(batch, shots, H, W)`` image.

    Applies ``INPUT_MODES[mode]``: optional crop to the first ``time_crop`` samples, optional
    bilinear resample to ``image_size`` and reflection padding (clamped so that short test
    inputs can still be reflected).
    """
    preset = INPUT_MODES[mode]
    if preset["time_crop"] is not None:
        gathers = gathers[:, :, : preset["time_crop"]]
    if preset["image_size"] is not None:
        gathers = F.interpolate(
            gathers, size=preset["image_size"], mode="bilinear", align_corners=False
        )
    left, right, top, bottom = preset["pad"]
    height, width = gathers.shape[-2:]
    pad = (
        min(left, width - 1),
        min(right, width - 1),
        min(top, height - 1),
        min(bottom, height - 1),
    )
    if any(pad):
        gathers = F.pad(gathers, pad, mode="reflect")
    return gathers


class ChannelsLastInstanceNorm(nn.Module):
    """InstanceNorm2d for the ``(batch, H, W, C)`` tensors a ConvNeXt block normalises."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def to_instance_norm(module: nn.Module) -> None:
    """Replace the LayerNorms of a timm ConvNeXt by InstanceNorm (the GWI baseline's choice)."""
    from timm.layers import LayerNorm2d
    from timm.models.convnext import ConvNeXtBlock

    for name, child in module.named_children():
        if isinstance(child, LayerNorm2d):
            setattr(module, name, nn.InstanceNorm2d(child.normalized_shape[0], affine=True))
        elif (
            isinstance(child, nn.LayerNorm)
            and isinstance(module, ConvNeXtBlock)
            and not module.use_conv_mlp
        ):
            setattr(module, name, ChannelsLastInstanceNorm(child.normalized_shape[0]))
        else:
            to_instance_norm(child)


def adapt_stem(encoder: nn.Module, preset: dict) -> None:
    """Give the encoder's first Conv2d the preset's stride/padding and append the extra conv."""
    for parent in encoder.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                child.stride, child.padding = tuple(preset["stem_stride"]), preset["stem_padding"]
                if preset["extra_stride"] is not None:
                    extra = nn.Conv2d(
                        child.out_channels,
                        child.out_channels,
                        4,
                        preset["extra_stride"],
                        preset["extra_padding"],
                    )
                    setattr(parent, name, nn.Sequential(child, extra))
                return
    raise ValueError("input_mode: the backbone has no Conv2d stem")


class UpStage(nn.Module):
    """2x transposed convolution, skip concatenation, two 3 x 3 conv + ReLU (baseline decoder)."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels, 2, 2)
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels + skip_channels, out_channels, 3, 1, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if x.shape[-2:] != skip.shape[-2:]:
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.convs(torch.cat([x, skip], dim=1))


class DecoderFusion(nn.Module):
    """Select decoder outputs by index and fuse them with fixed or learned (softmax) weights.

    ``forward(outputs)`` takes ``[deepest, ..., finest]`` maps and returns one map with the
    finest layer's channels and size.
    """

    def __init__(
        self,
        channels: list[int],
        layers: tuple[int, ...],
        mode: str,
        weights: tuple[float, ...] | None,
    ) -> None:
        super().__init__()
        n = len(channels)
        self.layers = tuple(i % n for i in layers)
        target = channels[-1]
        self.adapters = nn.ModuleList(
            nn.Identity() if channels[i] == target else nn.Conv2d(channels[i], target, 1)
            for i in self.layers
        )
        self.mode = mode
        if mode == "learned":
            self.logits = nn.Parameter(torch.zeros(len(self.layers)))
        else:
            fixed = torch.ones(len(self.layers)) if weights is None else torch.tensor(weights)
            self.register_buffer("fixed", fixed / fixed.sum(), persistent=False)

    def weights(self) -> torch.Tensor:
        """The fusion weights, ``(len(layers),)``, non-negative, summing to one."""
        return torch.softmax(self.logits, 0) if self.mode == "learned" else self.fixed

    def forward(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        size = outputs[-1].shape[-2:]
        weights = self.weights()
        fused = None
        for k, (index, adapter) in enumerate(zip(self.layers, self.adapters, strict=True)):
            x = adapter(outputs[index])
            if x.shape[-2:] != size:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            fused = weights[k] * x if fused is None else fused + weights[k] * x
        return fused


def size_adapter(size: int, target: int, axis: int) -> nn.Module:
    """A learned layer changing one axis (0 = depth, 1 = width) of ``(b, 1, h, w)`` to target.

    Grows by a transposed convolution of kernel ``target - size + 1``, shrinks by a valid
    convolution of kernel ``size - target + 1``; identity when equal. Neither crops.
    """
    if size == target:
        return nn.Identity()
    kernel = abs(target - size) + 1
    shape = (kernel, 1) if axis == 0 else (1, kernel)
    if target > size:
        return nn.ConvTranspose2d(1, 1, shape)
    return nn.Conv2d(1, 1, shape)


class ExactHead(nn.Module):
    """Decoder map ``(b, c, h, w)`` -> logits ``(b, 1, nz, nx)`` exactly, without cropping.

    An axis more than ``MAX_ADAPTER_GROWTH`` away from the grid is first resized bilinearly to
    within it (never cropped); then learned size adapters close the gap.
    """

    def __init__(self, channels: int, size: tuple[int, int], nz: int, nx: int) -> None:
        super().__init__()
        mid = max(1, channels // 2)
        self.convs = nn.Sequential(
            nn.Conv2d(channels, mid, 3, 1, 1),
            nn.InstanceNorm2d(mid, affine=True),
            nn.GELU(),
            nn.Conv2d(mid, 1, 3, 1, 1),
        )

        def near(n: int, target: int) -> int:
            return min(max(n, target - MAX_ADAPTER_GROWTH), target + MAX_ADAPTER_GROWTH)

        self.resize_to = (near(size[0], nz), near(size[1], nx))
        self.adapt = nn.Sequential(
            size_adapter(self.resize_to[0], nz, 0), size_adapter(self.resize_to[1], nx, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)
        if x.shape[-2:] != self.resize_to:
            x = F.interpolate(x, size=self.resize_to, mode="bilinear", align_corners=False)
        return self.adapt(x)


class ConvNeXtUNet(nn.Module):
    """Gathers ``(batch, shots, time, receivers)`` -> velocity ``(batch, nz, nx)`` survey units.

    Built by ``build_convnext_unet``; see the module docstring for the layout.
    """

    def __init__(
        self,
        encoder: nn.Module,
        n_shots: int,
        input_mode: str,
        decoder_channels: tuple[int, ...],
        layers: tuple[int, ...],
        fusion_mode: str,
        fusion_weights: tuple[float, ...] | None,
        nz: int,
        nx: int,
        vmin: float,
        vmax: float,
        output_activation: str,
        probe_size: tuple[int, int],
    ) -> None:
        super().__init__()
        self.n_shots, self.input_mode = n_shots, input_mode
        self.encoder = encoder
        channels = list(encoder.feature_info.channels())
        n_stages = len(channels) - 1
        if len(decoder_channels) < n_stages:
            raise ValueError(
                f"decoder_channels needs at least {n_stages} entries for this backbone, "
                f"got {list(decoder_channels)}"
            )
        widths = list(decoder_channels[len(decoder_channels) - n_stages :])
        stages, previous = [], channels[-1]
        for skip, width in zip(reversed(channels[:-1]), widths, strict=True):
            stages.append(UpStage(previous, skip, width))
            previous = width
        self.decoder = nn.ModuleList(stages)
        out_channels = [channels[-1], *widths]
        n_outputs = len(out_channels)
        for index in layers:
            if not -n_outputs <= index < n_outputs:
                raise ValueError(
                    f"decoder_layers index {index} out of range for {n_outputs} decoder outputs"
                )
        self.fusion = DecoderFusion(out_channels, layers, fusion_mode, fusion_weights)
        # Probe the decoder's output size once, in eval mode (no BatchNorm statistics change).
        with torch.no_grad():
            self.eval()
            finest = self._decode(torch.zeros(1, n_shots, *probe_size))
            self.train()
        self.head = ExactHead(out_channels[-1], tuple(finest.shape[-2:]), nz, nx)
        self.output = VelocityOutput(nz, nx, vmin, vmax, output_activation)

    def _decode(self, gathers: torch.Tensor) -> torch.Tensor:
        features = self.encoder(prepare_image(gathers, self.input_mode))
        x, outputs = features[-1], [features[-1]]
        for stage, skip in zip(self.decoder, reversed(features[:-1]), strict=True):
            x = stage(x, skip)
            outputs.append(x)
        return self.fusion(outputs)

    def forward(self, gathers: torch.Tensor) -> torch.Tensor:
        """``(batch, shots, time, receivers)`` -> ``(batch, nz, nx)`` velocity, depth first."""
        check_gathers(gathers, self.n_shots, "convnext_unet")
        return self.output(self.head(self._decode(gathers)))


def backbone_with_weights(
    name: str, pretrained: bool | str, model: str, **timm_options
) -> nn.Module:
    """A timm backbone with the weights ``pretrained`` asks for.

    Args:
        name: timm model name.
        pretrained: False (random init, logged), True (timm's pretrained weights: network or
            cache; an error when unavailable), ``"auto"`` (timm's weights when already cached on
            this machine, else random init with a warning; never the network, so it decides at
            once offline) or the path of a local weights file (safetensors or .pth) that timm
            loads and adapts (e.g. to 5 input channels).
        model: the seisinv model name, for messages.
    """
    if pretrained == "auto":
        pretrained = cached_weights(name) or False
        if pretrained is False:
            log.warning("%s: no cached pretrained weights of %s on this machine; backbone "
                        "randomly initialised (pretrained=true downloads them, or give a weights "
                        "file path)", model, name)
            return create_backbone(name, False, **timm_options)
    if pretrained is not True and pretrained is not False:
        path = Path(str(pretrained))
        if not path.is_file():
            raise ValueError(f"pretrained weights file {str(pretrained)!r} does not exist")
        overlay = {"pretrained_cfg_overlay": {"file": str(path)}}
        return create_backbone(name, True, **timm_options, **overlay)
    if pretrained is False:
        log.info("%s: backbone %s randomly initialised (pretrained=False)", model, name)
    return create_backbone(name, pretrained, **timm_options)


@MODELS.register("convnext_unet")
def build_convnext_unet(
    survey: Survey,
    *,
    backbone: str = "convnext_small",
    pretrained: bool | str = False,
    input_mode: InputMode = "full",
    instance_norm: bool = True,
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32),
    decoder_layers: tuple[int, ...] = (-1,),
    fusion: FusionMode = "learned",
    fusion_weights: tuple[float, ...] | None = None,
    drop_path_rate: float = 0.0,
    output_activation: OutputActivation = "sigmoid",
) -> ConvNeXtUNet:
    """The GWI ConvNeXt U-Net (seed 002) sized for ``survey``.

    Args:
        survey: gives shots, the (nz, nx) grid, the velocity range and the probe input size.
        backbone: a timm ConvNeXt (``convnext_small`` in the baseline; ``test_convnext`` for
            tests); any timm ``features_only`` model with a Conv2d stem works.
        pretrained: False (random init, logged), True (timm's ImageNet weights: network or
            cache), "auto" (those weights when available, else random init with a warning) or
            the path of a local weights file (safetensors or .pth) timm loads.
        input_mode: "full", "256x72" or "72x72" (see ``INPUT_MODES``).
        instance_norm: replace the encoder's LayerNorms by InstanceNorm (the baseline does).
        decoder_channels: widths of the decoder stages, deepest first (the last
            ``encoder stages - 1`` are used; baseline (256, 128, 64, 32)).
        decoder_layers: indices into the decoder outputs ``[deepest, ..., finest]`` to fuse
            (negative from the finest; (-1,) = the finest only, the baseline).
        fusion: "learned" (softmax over learned logits) or "fixed" (``fusion_weights``).
        fusion_weights: fixed weights per selected layer (normalised to sum to one;
            None = equal).
        drop_path_rate: stochastic depth of the encoder.
        output_activation: "sigmoid", "tanh", "clamp" or "softplus", scaled to [vmin, vmax].
    """
    check_activation(output_activation)
    if input_mode not in INPUT_MODES:
        raise ValueError(f"input_mode {input_mode!r}; use one of {sorted(INPUT_MODES)}")
    if fusion not in ("fixed", "learned"):
        raise ValueError(f"fusion {fusion!r}; use 'fixed' or 'learned'")
    layers = tuple(decoder_layers)
    if not layers:
        raise ValueError("decoder_layers must name at least one decoder output")
    if fusion_weights is not None:
        if fusion == "learned":
            raise ValueError("fusion_weights are for fusion='fixed'; learned weights are trained")
        if len(fusion_weights) != len(layers) or min(fusion_weights) < 0 or not sum(fusion_weights):
            raise ValueError(
                f"fusion_weights needs {len(layers)} non-negative weights (one per decoder_layers"
                f" entry) with a positive sum, got {list(fusion_weights)}"
            )
    encoder = backbone_with_weights(
        backbone,
        pretrained,
        "convnext_unet",
        features_only=True,
        in_chans=survey.n_shots,
        drop_path_rate=drop_path_rate,
    )
    adapt_stem(encoder, INPUT_MODES[input_mode])
    if instance_norm:
        to_instance_norm(encoder)
    return ConvNeXtUNet(
        encoder,
        survey.n_shots,
        input_mode,
        tuple(decoder_channels),
        layers,
        fusion,
        None if fusion_weights is None else tuple(fusion_weights),
        survey.nz,
        survey.nx,
        survey.vmin,
        survey.vmax,
        output_activation,
        (survey.nt, survey.n_receivers),
    )
