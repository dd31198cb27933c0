"""The Kaggle GWI models (issue 16): ConvNeXt U-Net presets and head, decoder fusion, xattn's
seed-004 size and MLP head, the learned-weight ensemble and the family classifier."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seisinv.errors import ConfigError, DataError
from seisinv.models import (
    classify,
    create_model,
    list_models,
    model_input,
    rebuild_model,
    size_options,
)
from seisinv.models.convnext_unet import INPUT_MODES, prepare_image
from seisinv.models.output import bound_velocity
from seisinv.survey import OPENFWI

TINY_CONVNEXT = {"backbone": "test_convnext", "decoder_channels": (16, 8, 8)}


def test_new_models_are_registered_with_their_inputs() -> None:
    for name in ("convnext_unet", "learned_ensemble", "family_classifier"):
        assert name in list_models()
    assert model_input("family_classifier") == "velocity"
    assert "family_classifier" not in list_models("gathers")
    assert model_input("convnext_unet") == "gathers"


def test_input_presets_shape_the_image_as_documented() -> None:
    gathers = torch.randn(1, 5, 1000, 70)
    assert prepare_image(gathers, "full").shape == (1, 5, 1160, 72)  # 80 + 1000 + 80, 1 + 70 + 1
    assert prepare_image(gathers, "256x72").shape == (1, 5, 256, 72)
    assert prepare_image(gathers, "72x72").shape == (1, 5, 72, 72)
    # 256x72 looks only at the first 512 samples: later samples change nothing.
    changed = gathers.clone()
    changed[:, :, 512:] = 99.0
    torch.testing.assert_close(prepare_image(changed, "256x72"), prepare_image(gathers, "256x72"))
    assert set(INPUT_MODES) == {"full", "256x72", "72x72"}


@pytest.mark.parametrize("mode", ["full", "256x72", "72x72"])
def test_convnext_unet_head_gives_70x70_without_crop(mode: str) -> None:
    torch.manual_seed(0)
    model = create_model("convnext_unet", OPENFWI, input_mode=mode, **TINY_CONVNEXT)
    velocity = model(torch.randn(2, 5, 1000, 70))
    assert velocity.shape == (2, 70, 70)
    assert OPENFWI.vmin <= velocity.min() and velocity.max() <= OPENFWI.vmax
    # The head's own output is already 70 x 70: the shared output stage has nothing to crop.
    seen = {}
    model.head.register_forward_hook(lambda m, i, o: seen.update(shape=o.shape))
    model(torch.randn(1, 5, 1000, 70))
    assert tuple(seen["shape"][-2:]) == (70, 70)
    if mode == "full":  # 72 x 72 decoder map -> two learned 3-tap valid convolutions
        kernels = [layer.kernel_size for layer in model.head.adapt]
        assert kernels == [(3, 1), (1, 3)]


def test_convnext_full_mode_stem_is_square_at_openfwi_size() -> None:
    model = create_model("convnext_unet", OPENFWI, input_mode="full", **TINY_CONVNEXT)
    image = prepare_image(torch.zeros(1, 5, 1000, 70), "full")
    stem = model.encoder.stem_0
    assert tuple(stem(image).shape[-2:]) == (72, 72)


def test_decoder_fusion_weights_sum_to_one_and_learn() -> None:
    torch.manual_seed(0)
    model = create_model(
        "convnext_unet", OPENFWI, input_mode="72x72", decoder_layers=(-1, -2, 0), **TINY_CONVNEXT
    )
    weights = model.fusion.weights()
    assert weights.shape == (3,)
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0))
    model(torch.randn(2, 5, 1000, 70)).mean().backward()
    assert model.fusion.logits.grad is not None and model.fusion.logits.grad.abs().sum() > 0

    fixed = create_model(
        "convnext_unet",
        OPENFWI,
        input_mode="72x72",
        decoder_layers=(-1, -2),
        fusion="fixed",
        fusion_weights=(3.0, 1.0),
        **TINY_CONVNEXT,
    )
    torch.testing.assert_close(fixed.fusion.weights(), torch.tensor([0.75, 0.25]))
    assert not any("logits" in key for key, _ in fixed.named_parameters())


def test_decoder_fusion_changes_the_prediction() -> None:
    # Fusing a coarser layer must change the map (otherwise selection would be a no-op).
    gathers = torch.randn(1, 5, 1000, 70)
    torch.manual_seed(0)
    finest = create_model("convnext_unet", OPENFWI, input_mode="72x72", **TINY_CONVNEXT)
    torch.manual_seed(0)
    fused = create_model(
        "convnext_unet",
        OPENFWI,
        input_mode="72x72",
        decoder_layers=(-1, -2),
        fusion="fixed",
        fusion_weights=(1.0, 0.0),
        **TINY_CONVNEXT,
    )
    fused.load_state_dict(finest.state_dict(), strict=False)
    finest.eval(), fused.eval()
    with torch.no_grad():
        torch.testing.assert_close(fused(gathers), finest(gathers))  # weight 0 on layer -2
        fused.fusion.fixed.copy_(torch.tensor([0.5, 0.5]))
        assert not torch.allclose(fused(gathers), finest(gathers))


def test_convnext_unet_option_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="input_mode"):
        create_model("convnext_unet", OPENFWI, input_mode="128x128", **TINY_CONVNEXT)
    with pytest.raises(ConfigError, match="fusion_weights needs 2"):
        create_model(
            "convnext_unet",
            OPENFWI,
            decoder_layers=(-1, -2),
            fusion="fixed",
            fusion_weights=(1.0,),
            **TINY_CONVNEXT,
        )
    with pytest.raises(ConfigError, match="out of range"):
        create_model("convnext_unet", OPENFWI, decoder_layers=(7,), **TINY_CONVNEXT)
    with pytest.raises(ConfigError, match="does not exist"):
        create_model(
            "convnext_unet", OPENFWI, pretrained=str(tmp_path / "no.safetensors"), **TINY_CONVNEXT
        )


def test_convnext_unet_loads_a_local_weights_file(tmp_path) -> None:
    # pretrained: /path/to/file loads a timm checkpoint of the backbone (here a random one).
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(1)
    source = timm.create_model("test_convnext", in_chans=3)
    path = tmp_path / "test_convnext.safetensors"
    save_file(source.state_dict(), str(path))
    model = create_model(
        "convnext_unet", OPENFWI, pretrained=str(path), instance_norm=False, **TINY_CONVNEXT
    )
    torch.testing.assert_close(
        model.encoder.stages_1.blocks[0].conv_dw.weight,
        source.stages[1].blocks[0].conv_dw.weight,
    )


def test_xattn_seed_size_and_mlp_head() -> None:
    seed = size_options("xattn", "seed")
    assert (seed["embed_dim"], seed["num_heads"], seed["head"]) == (512, 8, "mlp")
    with torch.device("meta"):
        model = create_model("xattn", OPENFWI, **seed)
    assert len(model.encoder) * 2 == 12 and len(model.decoder.layers) == 12
    assert model.queries.shape[-1] == 512
    torch.manual_seed(0)
    tiny = create_model(
        "xattn",
        OPENFWI,
        **{**size_options("xattn", "tiny"), "head": "mlp", "output_activation": "softplus"},
    )
    assert not hasattr(tiny, "upsample")
    velocity = tiny(torch.randn(2, 5, 1000, 70))
    assert velocity.shape == (2, 70, 70)
    assert OPENFWI.vmin <= velocity.min() and velocity.max() <= OPENFWI.vmax


def test_softplus_activation_is_offset_softplus() -> None:
    logits = torch.tensor([-30.0, 0.0, 0.2, 30.0])
    velocity = bound_velocity(logits, 1500.0, 4500.0, "softplus")
    expected = 1500.0 + 3000.0 * torch.nn.functional.softplus(logits - 0.4327521295671885)
    torch.testing.assert_close(velocity[:3], expected[:3])
    assert velocity[1] == pytest.approx(3000.0)  # zero logits: the midpoint
    assert velocity[3] == 4500.0  # capped at vmax


def test_learned_ensemble_weights_get_gradients_and_combine_members() -> None:
    torch.manual_seed(0)
    model = create_model("learned_ensemble", OPENFWI, **size_options("learned_ensemble", "tiny"))
    gathers = torch.randn(2, 5, 1000, 70)
    members = model.member_predictions(gathers)
    # Independently initialised: the members disagree.
    assert not torch.allclose(members[0], members[1])
    velocity = model(gathers)
    torch.testing.assert_close(velocity, members.mean(0))  # zero logits: equal weights
    velocity.pow(2).mean().backward()
    assert model.logits.grad is not None and model.logits.grad.abs().sum() > 0
    torch.testing.assert_close(model.weights().sum(), torch.tensor(1.0))
    config = json.loads(json.dumps(model.seisinv_config))
    assert rebuild_model(config).state_dict().keys() == model.state_dict().keys()


def test_learned_ensemble_rejects_bad_members() -> None:
    with pytest.raises(ConfigError, match="at least two"):
        create_model("learned_ensemble", OPENFWI, members=["inversionnet"])
    with pytest.raises(ConfigError, match="cannot be an ensemble member"):
        create_model("learned_ensemble", OPENFWI, members=["family_classifier", "inversionnet"])
    with pytest.raises(ConfigError, match="not in members"):
        create_model(
            "learned_ensemble", OPENFWI, members=["xattn", "xattn"], member_options={"unet": {}}
        )


def test_family_classifier_contract_and_classify() -> None:
    torch.manual_seed(0)
    families = ["FlatVel_A", "CurveVel_A", "Style_B"]
    model = create_model("family_classifier", OPENFWI, families=families, width=4, depth=2)
    assert model.families == families
    assert model.seisinv_config["options"]["families"] == families
    velocity = 1500.0 + 3000.0 * torch.rand(4, 70, 70)
    logits = model(velocity)
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    names = classify(model, velocity.numpy())
    assert len(names) == 4 and set(names) <= set(families)
    assert classify(model, velocity[0]) == names[:1]
    rebuilt = rebuild_model(json.loads(json.dumps(model.seisinv_config)))
    assert rebuilt.families == families
    with pytest.raises(DataError, match="velocity"):
        model(torch.rand(2, 5, 1000, 70))


def test_family_classifier_learns_flat_versus_random() -> None:
    # Layered (depth-increasing, laterally constant) maps against noisy ones: separable, so a
    # few steps must bring the cross-entropy well down.
    torch.manual_seed(0)
    model = create_model("family_classifier", OPENFWI, families=["flat", "noise"], width=4, depth=2)
    depth = torch.linspace(1500.0, 4500.0, 70)[None, :, None].expand(8, 70, 70)
    noise = 1500.0 + 3000.0 * torch.rand(8, 70, 70)
    velocity = torch.cat([depth, noise])
    labels = torch.tensor([0] * 8 + [1] * 8)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(velocity), labels)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    assert classify(model, np.asarray(velocity)) == ["flat"] * 8 + ["noise"] * 8


def test_gwi_vit_reshape_is_the_documented_layout_and_invertible() -> None:
    from seisinv.models.gwi_vit import image_to_shots, shots_image

    gathers = torch.randn(2, 5, 350, 70)
    image = shots_image(gathers, 350, 70)
    assert image.shape == (2, 1, 350, 350)
    # image[b, 0, t, s * 70 + r] == gathers[b, s, t, r]
    for s, t, r in ((0, 0, 0), (1, 5, 69), (4, 349, 3), (3, 100, 35)):
        assert image[1, 0, t, s * 70 + r] == gathers[1, s, t, r]
    torch.testing.assert_close(image_to_shots(image, 5), gathers)
    # The Kaggle input (5, 1000, 70): time resampled to 350, then the same layout.
    kaggle = torch.randn(1, 5, 1000, 70)
    resampled = torch.nn.functional.interpolate(
        kaggle, size=(350, 70), mode="bilinear", align_corners=False
    )
    torch.testing.assert_close(image_to_shots(shots_image(kaggle, 350, 70), 5), resampled)


def test_gwi_vit_image_size_stages_share_weights() -> None:
    torch.manual_seed(0)
    options = size_options("gwi_vit", "tiny")
    stage1 = create_model("gwi_vit", OPENFWI, **options)
    stage2 = create_model("gwi_vit", OPENFWI, **{**options, "image_size": 42})
    # Same keys and shapes: a stage-1 checkpoint loads into the larger-image stage 2.
    stage2.load_state_dict(stage1.state_dict())
    gathers = torch.randn(2, 5, 1000, 70)
    seen = {}
    stage2.encoder.patch_embed.register_forward_hook(lambda m, i, o: seen.update(shape=o.shape))
    velocity = stage2(gathers)
    assert tuple(seen["shape"][1:3]) == (6, 6)  # 42 / 7 patches a side (28 / 7 = 4 at stage 1)
    assert velocity.shape == (2, 70, 70)
    assert OPENFWI.vmin <= velocity.min() and velocity.max() <= OPENFWI.vmax
    assert stage1.encoder.rope is not None and stage1.encoder.reg_token.shape[1] == 4


def test_gwi_vit_full_size_is_two_vit_s14() -> None:
    with torch.device("meta"):
        model = create_model("gwi_vit", OPENFWI, **size_options("gwi_vit", "full"))
    assert model.encoder.patch_embed.grid_size == (25, 25)  # 350 / 14
    assert model.encoder.embed_dim == 384 and len(model.encoder.blocks) == 12
    assert len(model.decoder) == 12
    assert model.block == (3, 3)


def test_gwi_vit_takes_a_timm_vit_backbone() -> None:
    torch.manual_seed(0)
    model = create_model(
        "gwi_vit",
        OPENFWI,
        backbone="test_vit",
        time_size=64,
        shot_width=16,
        image_size=64,
        pos_embed_size=64,
        patch_size=16,
        decoder_depth=1,
    )
    velocity = model(torch.randn(2, 5, 1000, 70))
    assert velocity.shape == (2, 70, 70)
    velocity.mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_pretrained_auto_falls_back_to_random_init_with_a_warning(monkeypatch, caplog) -> None:
    import seisinv.models.convnext_unet as module

    real = module.create_backbone

    def offline(name, pretrained, **options):
        if pretrained:
            raise ValueError(f"backbone {name!r}: pretrained weights unavailable (offline)")
        return real(name, pretrained, **options)

    monkeypatch.setattr(module, "create_backbone", offline)
    with caplog.at_level("WARNING"):
        model = create_model("convnext_unet", OPENFWI, pretrained="auto", **TINY_CONVNEXT)
    assert model(torch.randn(1, 5, 1000, 70)).shape == (1, 70, 70)
    assert "randomly initialised" in caplog.text
    with pytest.raises(ConfigError, match="pretrained weights unavailable"):
        create_model("convnext_unet", OPENFWI, pretrained=True, **TINY_CONVNEXT)


def _no_network(monkeypatch):
    """Any attempt at the hub or a socket fails the test."""
    import socket

    import huggingface_hub

    def refuse(*args, **kwargs):
        raise AssertionError("pretrained: auto touched the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    monkeypatch.setattr("timm.models._hub.hf_hub_download", refuse, raising=False)


def _empty_caches(monkeypatch, tmp_path):
    import huggingface_hub.constants
    import torch.hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.file_download.HF_HUB_CACHE", str(tmp_path / "hf"),
                        raising=False)
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "torch"))
    return old


def test_pretrained_auto_uses_only_cached_weights_without_network(monkeypatch, tmp_path,
                                                                  caplog) -> None:
    """``auto`` decides from the disk alone: random init at once when nothing is cached, the
    cached file when there is one; no socket or hub call either way."""
    import torch.hub
    from safetensors.torch import save_file
    from timm.models import get_pretrained_cfg

    from seisinv.models.backbones import cached_weights

    _no_network(monkeypatch)
    old = _empty_caches(monkeypatch, tmp_path)
    try:
        with caplog.at_level("WARNING"):
            create_model("convnext_unet", OPENFWI, pretrained="auto", **TINY_CONVNEXT)
        assert "no cached pretrained weights of test_convnext" in caplog.text
        assert cached_weights("test_convnext") is None

        # A hub cache holding the weights, laid out as huggingface_hub stores them.
        import timm

        repo = get_pretrained_cfg("test_convnext").hf_hub_id
        folder = tmp_path / "hf" / f"models--{repo.replace('/', '--')}"
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text("abc123")
        snapshot = folder / "snapshots" / "abc123"
        snapshot.mkdir(parents=True)
        reference = timm.create_model("test_convnext", pretrained=False)
        with torch.no_grad():
            for p in reference.parameters():
                p.fill_(0.125)
        save_file({k: v.contiguous() for k, v in reference.state_dict().items()},
                  str(snapshot / "model.safetensors"))
        assert cached_weights("test_convnext") == snapshot / "model.safetensors"
        loaded = create_model("convnext_unet", OPENFWI, pretrained="auto", **TINY_CONVNEXT)
        stage = dict(loaded.encoder.named_parameters())
        # Convolutions past the first stage (the stem is adapted to the input mode, norms may be
        # replaced by instance norms).
        deep = [v for k, v in stage.items() if k.startswith("stages_1.") and k.endswith(("conv_dw.weight", "fc1.weight"))]
        assert deep and all(torch.all(v == 0.125) for v in deep)
    finally:
        torch.hub.set_dir(old)
