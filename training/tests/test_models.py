import pytest
import torch

from stepframe_train.config import TEXT_MAX_LENGTH, default_stack, tiny_stack
from stepframe_train.models.fusers import FUSER_KINDS
from stepframe_train.stack import build_stack


@pytest.mark.parametrize("preset", [tiny_stack, default_stack])
@pytest.mark.parametrize("kind", FUSER_KINDS)
def test_every_fuser_returns_the_unets_conditioning_shape(preset, kind):
    cfg = preset(kind)
    stack = build_stack(cfg)
    b = 3
    ids = torch.full((b, TEXT_MAX_LENGTH), 49407)
    ids[:, 0] = 49406
    text_hidden, text_pooled = stack.text_encoder(ids)
    image_hidden, image_pooled = stack.image_encoder(torch.zeros(b, 3, cfg.image.image_size, cfg.image.image_size))
    fused = stack.fuser(text_hidden, text_pooled, image_hidden, image_pooled)
    assert fused.shape == (b, TEXT_MAX_LENGTH, cfg.unet.cross_attention_dim)


@pytest.mark.parametrize("kind", [k for k in FUSER_KINDS if k != "baseline"])
def test_image_conditioned_fusers_depend_on_the_image(kind):
    cfg = tiny_stack(kind)
    stack = build_stack(cfg)
    text = torch.randn(1, TEXT_MAX_LENGTH, cfg.text.width), torch.randn(1, cfg.text.width)
    a = stack.fuser(*text, torch.randn(1, cfg.image.tokens, cfg.image.width), torch.randn(1, cfg.image.width))
    b = stack.fuser(*text, torch.randn(1, cfg.image.tokens, cfg.image.width), torch.randn(1, cfg.image.width))
    assert not torch.allclose(a, b)


def test_baseline_fuser_is_the_text_encoding_and_ignores_the_image():
    cfg = tiny_stack("baseline")
    stack = build_stack(cfg)
    text_hidden = torch.randn(2, TEXT_MAX_LENGTH, cfg.text.width)
    out = stack.fuser(text_hidden, None, torch.randn(2, cfg.image.tokens, cfg.image.width), None)
    assert torch.equal(out, text_hidden)


@pytest.mark.parametrize("kind", ["concatenation", "image_pooling", "attend_to_image"])
def test_start_from_text_makes_the_fuser_pass_the_text_through(kind):
    cfg = tiny_stack(kind)
    stack = build_stack(cfg)
    stack.fuser.start_from_text()
    text_hidden = torch.randn(2, TEXT_MAX_LENGTH, cfg.text.width)
    image = torch.zeros(2, cfg.image.tokens, cfg.image.width), torch.zeros(2, cfg.image.width)
    out = stack.fuser(text_hidden, text_hidden[:, -1], *image)
    assert torch.allclose(out, text_hidden, atol=1e-5)


def test_text_encoder_pools_at_the_first_eos_token():
    stack = build_stack(tiny_stack("baseline"))
    ids = torch.full((1, TEXT_MAX_LENGTH), 49407)
    ids[0, :3] = torch.tensor([49406, 320, 1125])
    hidden, pooled = stack.text_encoder(ids)
    assert torch.allclose(pooled, hidden[:, 3])


def test_text_encoder_is_causal():
    stack = build_stack(tiny_stack("baseline"))
    ids = torch.full((2, TEXT_MAX_LENGTH), 49407)
    ids[:, :3] = torch.tensor([49406, 320, 1125])
    ids[1, 3] = 2368  # a later token must not change earlier positions
    hidden, _ = stack.text_encoder(ids)
    assert torch.allclose(hidden[0, :3], hidden[1, :3], atol=1e-6)
    assert not torch.allclose(hidden[0, 3], hidden[1, 3])


@pytest.mark.parametrize("preset", [tiny_stack, default_stack])
def test_unet_and_vae_shapes_follow_the_latent_downscale(preset):
    cfg = preset("baseline")
    stack = build_stack(cfg)
    size, f = cfg.image.image_size, cfg.vae.downscale
    mean, logvar = stack.vae.encode(torch.zeros(2, 3, size, size))
    assert mean.shape == logvar.shape == (2, cfg.vae.latent_channels, size // f, size // f)
    out = stack.unet(mean, torch.tensor([999, 1]), torch.zeros(2, TEXT_MAX_LENGTH, cfg.unet.cross_attention_dim))
    assert out.shape == mean.shape
    assert stack.vae.decoder(mean).shape == (2, 3, size, size)


def test_unet_rows_at_different_timesteps_are_independent():
    cfg = tiny_stack("baseline")
    stack = build_stack(cfg)
    sample = torch.randn(2, cfg.vae.latent_channels, 16, 16)
    context = torch.randn(2, TEXT_MAX_LENGTH, cfg.unet.cross_attention_dim)
    together = stack.unet(sample, torch.tensor([999, 10]), context)
    alone = stack.unet(sample[1:], torch.tensor([10]), context[1:])
    assert torch.allclose(together[1:], alone, atol=1e-5)


def test_unknown_fuser_kind_fails_with_the_allowed_kinds():
    with pytest.raises(ValueError, match="attend_to_image"):
        build_stack(tiny_stack("sum"))


def test_space_to_depth_fold_puts_each_pixel_of_a_patch_in_its_own_channel_and_unfolds_exactly():
    from stepframe_train.models.vae import fold_patches, unfold_patches

    image = torch.randn(2, 3, 8, 12)
    folded = fold_patches(image, 4)
    assert folded.shape == (2, 48, 2, 3)
    # channel c * 16 + dy * 4 + dx of cell (i, j) holds pixel (4i + dy, 4j + dx) of channel c
    assert folded[1, 2 * 16 + 1 * 4 + 3, 1, 2] == image[1, 2, 4 + 1, 8 + 3]
    assert torch.equal(unfold_patches(folded, 4), image)
    assert fold_patches(image, 1) is image
