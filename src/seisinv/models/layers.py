"""Small convolution blocks shared by the convolutional architectures."""

from __future__ import annotations

from typing import Literal

from torch import nn

Norm = Literal["batch", "instance", "none"]
NORMS: tuple[str, ...] = ("batch", "instance", "none")


def norm_layer(norm: str, channels: int) -> nn.Module:
    """BatchNorm2d, InstanceNorm2d (affine) or Identity for ``channels`` feature maps."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm {norm!r}; use one of {NORMS}")


def conv_block(
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int] = 3,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 1,
    norm: str = "batch",
) -> nn.Sequential:
    """Conv2d -> norm -> LeakyReLU(0.2), OpenFWI's ``ConvBlock``."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=norm == "none"),
        norm_layer(norm, out_channels),
        nn.LeakyReLU(0.2, inplace=True),
    )


def deconv_block(
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int] = 4,
    stride: int = 2,
    padding: int = 1,
    norm: str = "batch",
) -> nn.Sequential:
    """ConvTranspose2d -> norm -> LeakyReLU(0.2), OpenFWI's ``DeconvBlock`` (default: 2x up)."""
    return nn.Sequential(
        nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size, stride, padding, bias=norm == "none"
        ),
        norm_layer(norm, out_channels),
        nn.LeakyReLU(0.2, inplace=True),
    )
