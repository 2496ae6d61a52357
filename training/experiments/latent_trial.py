"""Do an autoencoder's latents let a small UNet keep the world's small pieces at low noise?

    cd training && /usr/bin/python3 -m experiments.latent_trial --kl-weight 1e-4

Trains an autoencoder (train_all's settings, batch 8) with the given KL weight, then a text-conditioned UNet
of the default shape on its latents at low noise only (t < --max-t, plain ε-loss; the timesteps where the
generated frames lose the pieces), and prints, at t = 20, 50 and 100, how often the text probe passes on the
decoded one-step x̂₀ and on the decoded noisy latent itself (x_t / √ᾱ_t, no model), over the first --recipes
val recipes' steps that the autoencoder's own reconstruction passes. Text encodings come from the CLIP
checkpoint in --runs. One thread, so two trials (say 1e-6 and 1e-4) can run side by side.
"""
from __future__ import annotations

from stepframe_train.pipeline import threads  # noqa: F401  (before torch: one thread, so two experiments run side by side)

import argparse
from pathlib import Path

import numpy as np
import torch

from stepframe_train.clip_tokenizer import ClipTokenizer
from stepframe_train.config import default_stack
from stepframe_train.export import DEFAULT_TOKENIZER, REPO
from stepframe_train.models.text_encoder import TextEncoder
from stepframe_train.models.unet import UNet
from stepframe_train.world.metrics import text_probe
from stepframe_train.world.recipes import split
from stepframe_train.world.render import render_recipe
from stepframe_train.pipeline.data import load_split, to_unit
from stepframe_train.pipeline.evaluate import decode_latents, encode_frames
from dataclasses import replace

from stepframe_train.pipeline.autoencoder import train_vae
from stepframe_train.pipeline.settings import TrainingConfig
from stepframe_train.pipeline.denoising import sd_alphas_cumprod

PROBE_TIMESTEPS = (20, 50, 100)


def main(argv: list[str] | None = None) -> int:
    pipeline = TrainingConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=REPO / "training" / "runs")
    parser.add_argument("--kl-weight", type=float, default=pipeline.autoencoder.kl_weight)
    parser.add_argument("--vae-steps", type=int, default=3000)
    parser.add_argument("--unet-steps", type=int, default=800, help="low-noise UNet steps at batch 32")
    parser.add_argument("--max-t", type=int, default=200)
    parser.add_argument("--recipes", type=int, default=40, help="validation recipes to probe")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = default_stack("baseline")
    data = load_split("train", limit=pipeline.recipes)
    stage = replace(pipeline.autoencoder, steps=args.vae_steps, kl_weight=args.kl_weight)
    vae, scaling, losses = train_vae(cfg, data, load_split("val"), stage, print)
    clip = torch.load(args.runs / "clip.pt")
    text_encoder = TextEncoder(cfg.text, clip["token_map"])
    text_encoder.load_state_dict(clip["text_encoder"])
    text_encoder.eval()
    tokenizer = ClipTokenizer.load(DEFAULT_TOKENIZER)

    def encode_text(texts: list[str]) -> torch.Tensor:
        return text_encoder(torch.tensor([tokenizer.encode_padded(t) for t in texts]))[0]

    with torch.no_grad():
        latents = torch.cat([vae.encode(to_unit(data.frames[i : i + 256]))[0] for i in range(0, len(data.frames), 256)]) * scaling
        text_hidden = encode_text(data.texts)
    unet = UNet(cfg.unet)
    acp = sd_alphas_cumprod()
    # A plain ε-loss at low noise only: not the pipeline's denoising stage, whose losses are beside this question.
    g = torch.Generator().manual_seed(pipeline.text_unet.seed)
    opt = torch.optim.AdamW(unet.parameters(), lr=pipeline.text_unet.losses.lr, weight_decay=pipeline.text_unet.losses.weight_decay)
    for step in range(args.unet_steps):
        idx = torch.randint(len(latents), (32,), generator=g)
        t = torch.randint(0, args.max_t, (32,), generator=g)
        a = acp[t].view(-1, 1, 1, 1)
        noise = torch.randn(latents[idx].shape, generator=g)
        loss = ((unet(a.sqrt() * latents[idx] + (1 - a).sqrt() * noise, t, text_hidden[data.text_index[idx]]) - noise) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    unet.eval()

    recipes, steps, frames = [], [], []
    for recipe in split("val")[: args.recipes]:
        for step, frame in zip(recipe.steps, render_recipe(recipe)):
            recipes.append(recipe), steps.append(step), frames.append(frame)

    def pass_rate(images: np.ndarray, keep: list[int]) -> float:
        return float(np.mean([text_probe(recipes[k], steps[k], images[k], recon[k]) for k in keep]))

    with torch.no_grad():
        z0 = encode_frames(vae, np.stack(frames), scaling)
        recon = decode_latents(vae, z0, scaling)
        keep = [k for k in range(len(frames)) if text_probe(recipes[k], steps[k], recon[k], recon[k])]
        hidden = encode_text([s.text for s in steps])
        rows = []
        for t in PROBE_TIMESTEPS:
            a = acp[t]
            xt = a.sqrt() * z0 + (1 - a).sqrt() * torch.randn(z0.shape, generator=g)
            eps = unet(xt, torch.full((len(z0),), t), hidden)
            rows.append(f"t={t}: UNet {pass_rate(decode_latents(vae, (xt - (1 - a).sqrt() * eps) / a.sqrt(), scaling), keep):.0%}, noisy latent {pass_rate(decode_latents(vae, xt / a.sqrt(), scaling), keep):.0%}")
    print(f"KL weight {args.kl_weight:g}: held-out PSNR {losses['val_psnr']:.2f} dB; one-step probe on {len(keep)} val steps the reconstruction passes: "
          + "; ".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
