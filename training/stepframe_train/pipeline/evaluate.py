"""Scores bundles with the reference sampler on the test split (issue 3's quality floor).

Protocol: for each test recipe the reference frame of step 1 is the given starting image (as a
user continuing a sequence would pass it as init_image); steps 2..n are generated, each fed the
previous generated frame. Every generated frame is compared with its reference frame.
"""
from __future__ import annotations

import numpy as np
import torch

from ..reference_sampler import ReferenceSampler, SamplerSettings
from ..world.metrics import probe_row, summarise
from ..world.recipes import Recipe
from ..world.render import render_recipe
from .data import to_unit


def _hwc(frame: torch.Tensor) -> np.ndarray:
    return frame.permute(1, 2, 0).numpy()


def encode_frames(vae, frames: np.ndarray, scaling: float = 1.0) -> torch.Tensor:
    """The latent means of uint8 [N, H, W, 3] frames, times `scaling` (the UNet's latent space when it is the VAE's factor)."""
    return vae.encode(to_unit(torch.from_numpy(frames).permute(0, 3, 1, 2)))[0] * scaling


def decode_latents(vae, z: torch.Tensor, scaling: float = 1.0) -> np.ndarray:
    """uint8 [N, H, W, 3] frames from latents scaled by `scaling`, rounded as the engine rounds them."""
    return ((vae.decoder(z / scaling) / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


@torch.no_grad()
def autoencoder_roundtrip(vae, frames: np.ndarray) -> np.ndarray:
    return decode_latents(vae, encode_frames(vae, frames))


def evaluate(samplers: dict[str, ReferenceSampler], vae, recipes: list[Recipe], settings: dict[str, SamplerSettings]) -> tuple[dict, dict]:
    """Returns (metrics per row name, generated frames per row name and recipe id)."""
    rows: dict[str, list[dict]] = {name: [] for name in [*samplers, "copy_previous_frame", "autoencoder_reconstruction"]}
    generated: dict[str, dict[int, list[np.ndarray]]] = {name: {} for name in samplers}
    for recipe in recipes:
        reference = render_recipe(recipe)
        recon = autoencoder_roundtrip(vae, reference)
        first = torch.from_numpy(reference[0]).permute(2, 0, 1).contiguous()
        texts = [s.text for s in recipe.steps[1:]]
        outputs = {name: [_hwc(f) for f in sampler.sample_sequence(texts, settings[name], init_frame=first)] for name, sampler in samplers.items()}
        for name, frames in outputs.items():
            generated[name][recipe.recipe_id] = frames
        for i, step in enumerate(recipe.steps[1:], start=1):
            candidates = {**{name: frames[i - 1] for name, frames in outputs.items()}, "copy_previous_frame": reference[i - 1], "autoencoder_reconstruction": recon[i]}
            for name, frame in candidates.items():
                rows[name].append(probe_row(recipe, step, frame, reference[i], recon[i]))
    return {name: summarise(r) for name, r in rows.items()}, generated


def scores_line(recipes: int, m: dict) -> str:
    """One row of `summarise` as the trial tools print it."""
    return (f"val {recipes} recipes: text probe {m['text_probe_pass']:.1%} ({m['probed_steps']} steps), "
            f"{m['text_probe_pass_showable']:.1%} on {m['showable_steps']} steps the reconstruction passes, style {m['style_error']:.1f}, PSNR {m['psnr']:.2f}")
