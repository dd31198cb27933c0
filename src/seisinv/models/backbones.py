"""Creating timm backbones with errors a user can act on."""

from __future__ import annotations

from pathlib import Path

import timm
from torch import nn


def create_backbone(name: str, pretrained: bool | str, **timm_options) -> nn.Module:
    """``timm.create_model(name, pretrained=..., **timm_options)``.

    ``pretrained`` is False (random init), True (timm's hub or cache) or the path of a local
    weights file (``.safetensors``, ``.pth``, ``.bin``) for that timm model.

    Raises:
        ValueError: unknown or unsuitable timm model, or pretrained weights that cannot be had
            (no network and no cached copy); the message names the backbone.
    """
    if not timm.is_model(name):
        raise ValueError(f"backbone {name!r} is not a timm model (see timm.list_models())")
    if isinstance(pretrained, str):
        if not Path(pretrained).is_file():
            raise ValueError(f"backbone {name!r}: pretrained weights file {pretrained} not found")
        timm_options["pretrained_cfg_overlay"] = {"file": str(Path(pretrained).resolve())}
    try:
        return timm.create_model(name, pretrained=bool(pretrained), **timm_options)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"backbone {name!r}: {exc}") from None
    except OSError as exc:  # huggingface_hub / urllib: no network and no cached weights
        raise ValueError(
            f"backbone {name!r}: pretrained weights unavailable ({exc}); "
            "use pretrained=False or fill timm's cache on a machine with network"
        ) from None
