"""The GWI recipes (issue 16) hold the settings their sources state, and their models build."""

from __future__ import annotations

import pytest
import torch
import yaml

from seisinv.models import count_parameters, create_model
from seisinv.survey import OPENFWI
from seisinv.training.config import load_config, recipe_path

GWI_RECIPES = [
    "gwi-convnext-unet",
    "gwi-convnext-unet-256x72",
    "gwi-convnext-unet-72x72",
    "gwi-sota-xattn",
    "gwi-vit",
    "gwi-family-classifier",
]


def raw(name: str) -> dict:
    return yaml.safe_load(recipe_path(name).read_text())


@pytest.mark.parametrize("name", GWI_RECIPES)
def test_recipe_model_builds_and_header_lists_sources(name: str) -> None:
    recipe = raw(name)
    assert recipe["name"] == name
    options = recipe["model"]["options"]
    if options.get("pretrained") == "auto":  # no network in tests: timm would wait for the hub
        options["pretrained"] = False
    with torch.device("meta"):
        model = create_model(recipe["model"]["name"], OPENFWI, **options)
    assert count_parameters(model) > 0
    header = [line for line in recipe_path(name).read_text().splitlines() if line.startswith("#")]
    assert any("Sources:" in line for line in header)


def test_convnext_recipes_follow_seed_002() -> None:
    modes = {}
    for name in GWI_RECIPES[:3]:
        config = load_config(name)
        options = config.model.options
        modes[name] = options["input_mode"]
        # _cfg.py: convnext_small.fb_in22k_ft_in1k, EMA 0.99, batch 32, 5 epochs, seed 123,
        # fusion of layers [-1, -2] weighted [0.7, 0.3]; noise p 0.4 at 0.005, scale p 0.3.
        assert options["backbone"] == "convnext_small.fb_in22k_ft_in1k"
        assert (options["decoder_layers"], options["fusion_weights"]) == ([-1, -2], [0.7, 0.3])
        assert (config.ema.decay, config.batch_size, config.epochs, config.seed) == (
            0.99,
            32,
            5,
            123,
        )
        augment = {step["name"]: step for step in config.data.augment}
        assert augment["noise"]["p"] == 0.4 and augment["noise"]["level"] == 0.005
        assert (augment["amplitude"]["low"], augment["amplitude"]["high"]) == (0.99, 1.01)
        assert [t.name for t in config.loss.terms] == ["l1", "smoothness"]
        # The write-up: "CosineLRScheduler: little positive changes with more stability".
        assert config.schedule.name == "timm_cosine"
    assert modes == {
        "gwi-convnext-unet": "full",
        "gwi-convnext-unet-256x72": "256x72",
        "gwi-convnext-unet-72x72": "72x72",
    }


def test_sota_xattn_recipe_follows_seed_004() -> None:
    config = load_config("gwi-sota-xattn")
    weights = {t.name: t.weight for t in config.loss.terms}
    assert weights == {"mape": 1.0, "mse": 0.5, "smoothness": 0.3, "physics": 0.2}
    options = config.model.options
    assert (options["embed_dim"], options["num_heads"]) == (512, 8)
    assert (options["head"], options["output_activation"]) == ("mlp", "softplus")
    assert (config.optimizer.lr, config.batch_size, config.epochs) == (1e-4, 8, 100)
    # Warm restarts and time-frequency augmentation (seed 004).
    assert (config.schedule.name, config.schedule.cycles) == ("timm_cosine", 4)
    assert {"band_limit", "spectral_mask"} <= {s["name"] for s in config.data.augment}
    # The physics term builds with this recipe's own resampling pipeline.
    from seisinv.data import build_pipeline
    from seisinv.training.losses import Loss, LossContext

    pipeline = build_pipeline([dict(s) for s in config.data.transforms], OPENFWI)
    assert [s.name for s in pipeline.steps] == ["resample", "zscore"]
    Loss(config.loss, LossContext(OPENFWI, pipeline))


def test_vit_recipe_follows_the_first_place() -> None:
    config = load_config("gwi-vit")
    options = config.model.options
    assert (options["time_size"], options["shot_width"], options["image_size"]) == (350, 70, 350)
    assert (options["patch_size"], options["embed_dim"], options["reg_tokens"]) == (14, 384, 4)
    assert options["rope"] is True and options["output_activation"] == "sigmoid"
    assert [t.name for t in config.loss.terms] == ["l1"]
    assert (config.optimizer.lr, config.schedule.name, config.schedule.min_lr) == (
        1e-4,
        "cosine",
        1e-5,
    )
    assert config.ema.enabled and [s["name"] for s in config.data.augment] == ["flip"]


def test_family_classifier_recipe_names_the_ten_families() -> None:
    recipe = raw("gwi-family-classifier")
    assert recipe["task"] == "family"
    families = recipe["model"]["options"]["families"]
    assert len(families) == 10 and {"Style_A", "Style_B", "FlatFault_B"} <= set(families)
