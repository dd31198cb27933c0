"""ViT encoder + ViT decoder on the shots-side-by-side image (Kaggle GWI 1st place, 587388).

The input reshape (the write-up's key step, "forcing the channels into a spatial layout"):
``(batch, shots, time, receivers)`` is resampled bilinearly to ``(time_size, shot_width)`` per
shot and the shots are laid side by side along the width, shot ``s`` filling columns
``s * shot_width .. (s + 1) * shot_width``::

    image[b, 0, t, s * shot_width + r] = resampled[b, s, t, r]

For Kaggle GWI (5 shots x 1000 time x 70 receivers) with ``time_size=350`` this gives one
``(1, 350, 350)`` image (``shots_image``; ``image_to_shots`` is its inverse). The image is then
resized to ``image_size`` x ``image_size`` (equal to 350 at the first stage; raised in later
stages, as the winner did).

Encoder: a DINOv2-style ViT-S/14 with 4 register tokens and rotary position embedding (RoPE),
built from timm's EVA blocks (or any timm ViT/EVA by name, e.g.
``vit_small_patch14_reg4_dinov2`` with ``pretrained``). The absolute position embedding is
stored for ``pos_embed_size`` and interpolated to the current image's patch grid at run time,
so a checkpoint trained at one ``image_size`` continues at another (same weights, same keys).
Decoder: ``decoder_depth`` more EVA blocks over all tokens (no U-Net, no skips). Head: a
LayerNorm and one linear layer turning each patch token into a ``block`` of velocities (a
PixelShuffle; block = the output grid over the patch grid at ``pos_embed_size``), the map
resized bilinearly to ``(nz, nx)`` and bounded by a sigmoid to ``[vmin, vmax]`` (1500-4500 m/s
for OpenFWI, the winner's range).
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from timm.models.eva import Eva, EvaBlock
from torch import nn

from seisinv.models.convnext_unet import backbone_with_weights
from seisinv.models.eva_fusion import pixel_shuffle_2d
from seisinv.models.output import OutputActivation, VelocityOutput, check_activation, check_gathers
from seisinv.models.registry import MODELS
from seisinv.survey import Survey

log = logging.getLogger(__name__)


def shots_image(gathers: torch.Tensor, time_size: int, shot_width: int) -> torch.Tensor:
    """``(batch, shots, time, receivers)`` -> ``(batch, 1, time_size, shots * shot_width)``.

    Bilinear resampling per shot, then shots side by side along the width (see module doc).
    """
    if tuple(gathers.shape[-2:]) != (time_size, shot_width):
        gathers = F.interpolate(
            gathers, size=(time_size, shot_width), mode="bilinear", align_corners=False
        )
    batch, shots = gathers.shape[:2]
    return gathers.permute(0, 2, 1, 3).reshape(batch, 1, time_size, shots * shot_width)


def image_to_shots(image: torch.Tensor, shots: int) -> torch.Tensor:
    """Inverse of ``shots_image`` (before resampling): ``(b, 1, t, shots * w)`` -> ``(b, shots, t, w)``."""
    batch, _, time, width = image.shape
    return image.reshape(batch, time, shots, width // shots).permute(0, 2, 1, 3)


class GwiViT(nn.Module):
    """Gathers ``(batch, shots, time, receivers)`` -> velocity ``(batch, nz, nx)`` survey units.

    Built by ``build_gwi_vit``; see the module docstring.
    """

    def __init__(
        self,
        encoder: nn.Module,
        n_shots: int,
        nz: int,
        nx: int,
        vmin: float,
        vmax: float,
        time_size: int,
        shot_width: int,
        image_size: int,
        decoder_depth: int,
        output_activation: str,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.n_shots, self.nz, self.nx = n_shots, nz, nx
        self.time_size, self.shot_width, self.image_size = time_size, shot_width, image_size
        dim = encoder.embed_dim
        self.patch = tuple(encoder.patch_embed.patch_size)
        self.prefix = encoder.num_prefix_tokens
        heads = encoder.blocks[0].attn.num_heads
        self.decoder = nn.ModuleList(
            EvaBlock(dim, heads, num_prefix_tokens=self.prefix, init_values=1e-5)
            for _ in range(decoder_depth)
        )
        self.norm = nn.LayerNorm(dim)
        reference = tuple(encoder.patch_embed.grid_size)
        self.block = (math.ceil(nz / reference[0]), math.ceil(nx / reference[1]))
        self.head = nn.Linear(dim, self.block[0] * self.block[1])
        self.output = VelocityOutput(nz, nx, vmin, vmax, output_activation)

    def image(self, gathers: torch.Tensor) -> torch.Tensor:
        """The encoder's input ``(batch, 1, image_size, image_size)``."""
        image = shots_image(gathers, self.time_size, self.shot_width)
        size = (self.image_size, self.image_size)
        if tuple(image.shape[-2:]) != size:
            image = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
        return image

    def forward(self, gathers: torch.Tensor) -> torch.Tensor:
        """``(batch, shots, time, receivers)`` -> ``(batch, nz, nx)`` velocity, depth first."""
        check_gathers(gathers, self.n_shots, "gwi_vit")
        image = self.image(gathers)
        grid = (image.shape[-2] // self.patch[0], image.shape[-1] // self.patch[1])
        tokens = self.encoder.forward_features(image)
        rope = getattr(self.encoder, "rope", None)
        rope = rope.get_embed(shape=grid) if rope is not None else None
        for block in self.decoder:
            tokens = block(tokens, rope=rope)
        tokens = self.norm(tokens)[:, self.prefix :]
        maps = pixel_shuffle_2d(self.head(tokens), grid, self.block).float()
        maps = F.interpolate(maps, size=(self.nz, self.nx), mode="bilinear", align_corners=False)
        return self.output(maps)


@MODELS.register("gwi_vit")
def build_gwi_vit(
    survey: Survey,
    *,
    backbone: str | None = None,
    pretrained: bool | str = False,
    time_size: int = 350,
    shot_width: int = 70,
    image_size: int = 350,
    pos_embed_size: int = 350,
    patch_size: int = 14,
    embed_dim: int = 384,
    depth: int = 12,
    num_heads: int = 6,
    reg_tokens: int = 4,
    rope: bool = True,
    decoder_depth: int = 12,
    drop_path_rate: float = 0.0,
    output_activation: OutputActivation = "sigmoid",
) -> GwiViT:
    """The Kaggle GWI 1st-place ViT encoder-decoder sized for ``survey``.

    Args:
        survey: gives shots, the (nz, nx) grid and the velocity range.
        backbone: None (a DINOv2-S/14-style EVA with registers and RoPE from the options below)
            or a timm ViT/EVA name (e.g. ``vit_small_patch14_reg4_dinov2``), whose sizes win.
        pretrained: False, True (timm's weights for ``backbone``), "auto" (those when
            available, else random init with a warning) or a local weights file.
        time_size: time samples per shot in the image (350: 1000 -> 350).
        shot_width: receivers per shot in the image (70; 5 shots -> 350 columns).
        image_size: side of the square image the encoder sees (raise it between stages).
        pos_embed_size: image side the absolute position embedding is stored for
            (interpolated to ``image_size``; keep it fixed across stages).
        patch_size, embed_dim, depth, num_heads: the encoder (ViT-S/14: 14, 384, 12, 6).
        reg_tokens: register tokens (DINOv2 "reg4": 4).
        rope: rotary position embedding in the attention (the winner's final models).
        decoder_depth: ViT blocks of the decoder (the write-up repeats the encoder).
        drop_path_rate: stochastic depth of the encoder.
        output_activation: "sigmoid" (the winner's) or another bound to [vmin, vmax].
    """
    check_activation(output_activation)
    if min(time_size, shot_width, image_size, pos_embed_size, patch_size) < 1:
        raise ValueError("time_size, shot_width, image_size, pos_embed_size, patch_size >= 1")
    if image_size % patch_size or pos_embed_size % patch_size:
        raise ValueError(
            f"image_size {image_size} and pos_embed_size {pos_embed_size} must be multiples "
            f"of patch_size {patch_size}"
        )
    if decoder_depth < 0:
        raise ValueError(f"decoder_depth must be >= 0, got {decoder_depth}")
    if backbone is not None:
        encoder = backbone_with_weights(
            backbone,
            pretrained,
            "gwi_vit",
            img_size=pos_embed_size,
            in_chans=1,
            num_classes=0,
            dynamic_img_size=True,
            drop_path_rate=drop_path_rate,
        )
        if not hasattr(encoder, "forward_features") or not hasattr(encoder, "patch_embed"):
            raise ValueError(f"backbone {backbone!r} is not a timm ViT/EVA")
    else:
        if pretrained:
            raise ValueError("pretrained needs a timm backbone name (backbone=...)")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        grid = pos_embed_size // patch_size
        encoder = Eva(
            img_size=pos_embed_size,
            patch_size=patch_size,
            in_chans=1,
            num_classes=0,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=4.0,
            num_reg_tokens=reg_tokens,
            use_rot_pos_emb=rope,
            ref_feat_shape=(grid, grid) if rope else None,
            init_values=1e-5,
            dynamic_img_size=True,
            drop_path_rate=drop_path_rate,
        )
        log.info("gwi_vit: encoder randomly initialised (no backbone name)")
    # The classifier pooling pieces are never used: drop them so every parameter trains.
    if hasattr(encoder, "fc_norm"):
        encoder.fc_norm = nn.Identity()
    if getattr(encoder, "attn_pool", None) is not None:
        encoder.attn_pool = None
    return GwiViT(
        encoder,
        survey.n_shots,
        survey.nz,
        survey.nx,
        survey.vmin,
        survey.vmax,
        time_size,
        shot_width,
        image_size,
        decoder_depth,
        output_activation,
    )
