"""Creating timm backbones with errors a user can act on, and finding their cached weights.

``cached_weights`` looks for a timm model's pretrained weights where timm would have stored them
(the Hugging Face hub cache for ``hf_hub_id`` weights, torch.hub's ``checkpoints`` folder for URL
weights) without any network access, so ``pretrained: auto`` can decide at once on an offline
machine.
"""

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
            f"backbone {name!r}: pretrained weights unavailable (no network and no cached copy: "
            f"{type(exc).__name__}); download them where there is network, then set "
            f"model.options.pretrained=/path/to/{name}.safetensors, or pretrained=false"
        ) from None


# Weight files timm reads from a Hugging Face repository, in the order it tries them.
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors",
                   "open_clip_pytorch_model.bin")


def cached_weights(name: str) -> Path | None:
    """The local file of timm model ``name``'s pretrained weights, or None when not cached.

    Looks only at the disk (``huggingface_hub.try_to_load_from_cache`` for ``hf_hub_id`` weights,
    ``torch.hub.get_dir()/checkpoints/<file name of the url>`` for URL weights, a configured
    ``file``); never touches the network.
    """
    from timm.models import get_pretrained_cfg

    try:
        cfg = get_pretrained_cfg(name)
    except (RuntimeError, ValueError):
        return None
    if cfg is None:
        return None
    if cfg.file and Path(cfg.file).is_file():
        return Path(cfg.file)
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo, _, revision = cfg.hf_hub_id.partition("@")
        names = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else HF_WEIGHT_FILES
        for filename in names:
            found = try_to_load_from_cache(repo, filename, revision=revision or None)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
    if cfg.url:
        import torch.hub

        local = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url.split("?")[0]).name
        if local.is_file():
            return local
    return None
