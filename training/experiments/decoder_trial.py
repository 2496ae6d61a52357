"""Does a decoder retrained alone, on the frozen encoder's latents, draw the pieces the joint one blurs?

Retrains the autoencoder's decoder alone, on the shipped encoder's latents, and scores the reconstruction per ingredient.

    cd training && /usr/bin/python3 -m experiments.decoder_trial --steps 4000 --detail-weight 24

The encoder stays frozen, so the latents the UNets were trained on do not move: a better decoder raises both the
reconstruction the text probe is counted against and every generated frame, without retraining CLIP or a UNet.
Prints the shipped decoder's scores first, then the retrained one's: held-out PSNR (60 val recipes) and, on every
step after the first of 64 test recipes, how often the reconstruction passes the text probe, overall and per
ingredient. One thread, so two trials can run side by side.
"""
from __future__ import annotations

from stepframe_train.pipeline import threads  # noqa: F401  (before torch: one thread, so two experiments run side by side)

import argparse
import dataclasses
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from stepframe_train.config import default_stack
from stepframe_train.export import REPO
from stepframe_train.models.vae import VaeDecoder
from stepframe_train.world.metrics import text_probe
from stepframe_train.world.recipes import split
from stepframe_train.world.render import render_recipe
from stepframe_train.pipeline.data import load_split
from stepframe_train.pipeline.checkpoints import first_stage_checkpoints, refined_decoder_checkpoint, shared_models, trained_config
from stepframe_train.pipeline.evaluate import autoencoder_roundtrip
from stepframe_train.pipeline.autoencoder import held_out_psnr, refine_decoder
from stepframe_train.pipeline.settings import TrainingConfig


def probe_by_subject(vae, recipes) -> tuple[float, dict[str, float]]:
    passes: dict[str, list[bool]] = defaultdict(list)
    for recipe in recipes:
        recon = autoencoder_roundtrip(vae, render_recipe(recipe))
        for i, step in enumerate(recipe.steps[1:], start=1):
            result = text_probe(recipe, step, recon[i], recon[i])
            if result is not None:
                passes[step.subject].append(result)
    overall = float(np.mean([p for rows in passes.values() for p in rows]))
    return overall, {s: float(np.mean(rows)) for s, rows in sorted(passes.items())}


def report(name: str, vae, val, recipes) -> None:
    with torch.no_grad():
        psnr = held_out_psnr(vae, val)
        overall, by_subject = probe_by_subject(vae, recipes)
    print(f"{name}: held-out PSNR {psnr:.2f} dB, reconstruction passes the text probe on {overall:.1%}", flush=True)
    print("  " + ", ".join(f"{s} {p:.0%}" for s, p in by_subject.items()), flush=True)


def main(argv: list[str] | None = None) -> int:
    pipeline = TrainingConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=REPO / "training" / "runs")
    parser.add_argument("--channels", type=int, default=64, help="the decoder's width")
    parser.add_argument("--init", choices=("shipped", "scratch"), default="shipped", help="start from --runs' decoder (same width only) or from scratch")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=pipeline.decoder.batch)
    parser.add_argument("--lr", type=float, default=pipeline.decoder.lr)
    parser.add_argument("--detail-weight", type=float, default=pipeline.decoder.detail_weight)
    parser.add_argument("--save-runs", type=Path, default=None,
                        help="write a runs folder here: --runs' checkpoints linked, decoder.pt the retrained decoder (same width only), for probe_breakdown --runs")
    parser.add_argument("--recipes", type=int, default=pipeline.recipes, help="training recipes")
    args = parser.parse_args(argv)
    if args.save_runs and args.channels != default_stack("baseline").vae.channels[0]:
        parser.error("--save-runs needs the stack's decoder width: the bundle export builds the decoder from the config")
    torch.set_num_threads(1)
    vae_ckpt, clip_ckpt = first_stage_checkpoints(args.runs)
    cfg = trained_config(default_stack("baseline"), vae_ckpt)
    _, _, vae = shared_models(cfg, vae_ckpt, clip_ckpt)
    val = load_split("val", limit=60)
    test_recipes = split("test")[:64]
    report("shipped decoder", vae, val, test_recipes)

    if args.channels != cfg.vae.channels[0] or args.init == "scratch":
        vae.decoder = VaeDecoder(dataclasses.replace(cfg.vae, channels=(args.channels,)))
    # train_all's decoder stage, its seed included (seed 11 before the configuration was one object: figures in
    # docs/experiments.md from that time used the autoencoder's seed).
    stage = dataclasses.replace(pipeline.decoder, steps=args.steps, batch=args.batch, lr=args.lr, detail_weight=args.detail_weight)
    _, losses = refine_decoder(vae, load_split("train", limit=args.recipes), val, stage, lambda message: print(message, flush=True))
    report(f"decoder {args.channels} channels, {args.init}, {args.steps} steps, detail weight {args.detail_weight}", vae, val, test_recipes)
    if args.save_runs:
        args.save_runs.mkdir(parents=True, exist_ok=True)
        for source in args.runs.iterdir():
            if source.name != "decoder.pt" and not (args.save_runs / source.name).exists():
                (args.save_runs / source.name).symlink_to(source.resolve())
        # The file train_all's decoder stage writes, so first_stage_checkpoints takes it in place of --runs' own.
        torch.save(refined_decoder_checkpoint(vae, losses, vae_ckpt), args.save_runs / "decoder.pt")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
