"""Recommended option sets per architecture: ``tiny`` (trains on a CPU, used by the tests and demo
configs) and ``full`` (the size the challenge winners trained, for a GPU)."""

from __future__ import annotations

from typing import Any, Literal

from seisinv.errors import ConfigError

Size = Literal["tiny", "full"]

MODEL_SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "inversionnet": {"tiny": {"width": 0.25}, "full": {"width": 1.0}},
    "unet": {
        "tiny": {
            "backbone": "test_convnext",
            "input_height": 64,
            "decoder_channels": 16,
            "head_channels": 8,
        },
        "full": {"backbone": "caformer_s18", "input_height": 256, "first_stride": [4, 1]},
    },
    "eva_fusion": {
        "tiny": {
            "image_size": [28, 14],
            "patch_size": 7,
            "embed_dim": 32,
            "depth": 2,
            "num_heads": 2,
            "split": 1,
        },
        "full": {
            "image_size": [224, 224],
            "patch_size": 14,
            "embed_dim": 384,
            "depth": 12,
            "num_heads": 6,
            "split": 4,
        },
    },
    "eva_attention": {
        "tiny": {
            "image_size": [28, 28],
            "patch_size": 7,
            "embed_dim": 32,
            "depth": 2,
            "num_heads": 2,
            "split": 1,
            "shot_heads": 2,
            "query_heads": 2,
        },
        "full": {"backbone": "eva02_large_patch14_448.mim_in22k_ft_in22k_in1k", "split": 10},
    },
    "xattn": {
        "tiny": {
            "conv_channels": 6,
            "time_kernels": [7, 15],
            "token_grid": [4, 4],
            "embed_dim": 16,
            "num_heads": 2,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "max_queries": 16,
        },
        "full": {"embed_dim": 256, "num_heads": 8, "encoder_layers": 4, "decoder_layers": 4},
        # Seed 004's Config: embed_dim 512, num_heads 8, num_layers 12 (12 attention layers in
        # the encoder as 6 within-shot + across-shot pairs, 12 in the query decoder), MLP head
        # with SoftPlus + offset.
        "seed": {
            "embed_dim": 512,
            "num_heads": 8,
            "encoder_layers": 6,
            "decoder_layers": 12,
            "head": "mlp",
            "output_activation": "softplus",
        },
    },
    "convnext_unet": {
        "tiny": {
            "backbone": "test_convnext",
            "input_mode": "72x72",
            "decoder_channels": [16, 8, 8],
            "decoder_layers": [-1, -2],
        },
        "full": {"backbone": "convnext_small", "input_mode": "full"},
    },
    "learned_ensemble": {
        "tiny": {
            "members": ["inversionnet", "inversionnet"],
            "member_options": {"inversionnet": {"width": 0.25}},
        },
        "full": {"members": ["xattn", "xattn", "xattn"], "member_options": {}},
    },
    "diffusion_vel": {
        "tiny": {
            "timesteps": 50,
            "sample_steps": 3,
            "n_samples": 2,
            "base_channels": 8,
            "levels": 2,
            "cond_channels": 4,
            "encoder_time": 32,
            "encoder_channels": 8,
        },
        "full": {"base_channels": 64, "levels": 3, "cond_channels": 32, "encoder_channels": 64},
    },
    "gwi_vit": {
        "tiny": {
            "time_size": 28,
            "shot_width": 8,
            "image_size": 28,
            "pos_embed_size": 28,
            "patch_size": 7,
            "embed_dim": 32,
            "depth": 2,
            "num_heads": 2,
            "decoder_depth": 1,
        },
        "full": {"image_size": 350, "depth": 12, "decoder_depth": 12},
    },
    "family_classifier": {
        "tiny": {"width": 4, "depth": 2},
        "full": {"width": 32, "depth": 4},
    },
}


def size_options(name: str, size: Size = "tiny") -> dict[str, Any]:
    """Options of ``create_model(name, survey, **options)`` for a recommended size.

    Raises:
        ConfigError: no recommended sizes for ``name``, or an unknown size.
    """
    if name not in MODEL_SIZES:
        raise ConfigError(f"no recommended sizes for model {name!r}; known: {sorted(MODEL_SIZES)}")
    sizes = MODEL_SIZES[name]
    if size not in sizes:
        raise ConfigError(f"model {name!r} has sizes {sorted(sizes)}, not {size!r}")
    return dict(sizes[size])
