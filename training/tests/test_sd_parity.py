"""Parity with the libraries SD checkpoints come from: tests/fixtures/sd_reference (copied from
../shared/sd-reference) holds a tiny SD 1.x model in diffusers' layout, a CLIP vision tower and the
outputs diffusers 0.26.3 (UNet, VAE) and a transformers-equivalent CLIP computed for given inputs."""
from pathlib import Path

import numpy as np
import pytest
import torch

from stepframe_train.sd.folders import load_clip_vision, load_stable_diffusion

REFERENCE = Path(__file__).parent / "fixtures" / "sd_reference"
TOLERANCE = 1e-4  # of the output's largest magnitude


def ref(name: str) -> torch.Tensor:
    return torch.from_numpy(np.load(REFERENCE / "reference" / f"{name}.npy"))


def assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    error = (actual - expected).abs().max().item()
    scale = expected.abs().max().item()
    assert error <= TOLERANCE * scale, f"{what}: max error {error:.3e} > {TOLERANCE} x {scale:.3e}"


@pytest.fixture(scope="module")
def sd():
    return load_stable_diffusion(REFERENCE / "sd")


@torch.no_grad()
def test_unet_matches_diffusers(sd):
    out = sd.unet(ref("unet.sample"), ref("unet.timestep"), ref("unet.encoder_hidden_states"))
    assert_close(out, ref("unet.out_sample"), "unet.out_sample")


@torch.no_grad()
def test_vae_decoder_matches_diffusers(sd):
    assert_close(sd.vae.decode(ref("vae.latent_sample")), ref("vae.decoded"), "vae.decoded")


@torch.no_grad()
def test_vae_encoder_mean_matches_diffusers(sd):
    assert_close(sd.vae.encode_mean(ref("vae.sample")), ref("vae.latent_mean"), "vae.latent_mean")


@torch.no_grad()
def test_text_encoder_matches_transformers(sd):
    hidden, pooled, _ = sd.text_encoder(ref("text.input_ids"))
    assert_close(hidden, ref("text.last_hidden_state"), "text.last_hidden_state")
    assert_close(pooled, ref("text.pooler_output"), "text.pooler_output")


@torch.no_grad()
def test_vision_tower_with_projection_matches_transformers():
    vision = load_clip_vision(REFERENCE / "clip-vision")
    hidden, pooled, embeds = vision.model(ref("vision.pixel_values"))
    assert_close(hidden, ref("vision.last_hidden_state"), "vision.last_hidden_state")
    assert_close(pooled, ref("vision.pooler_output"), "vision.pooler_output")
    assert_close(embeds, ref("vision.image_embeds"), "vision.image_embeds")


def test_the_folder_says_what_it_serves(sd):
    assert sd.image_size == 32
    assert sd.vae.config.scaling_factor == 0.18215
    assert sd.scheduler_config["_class_name"] == "PNDMScheduler"
