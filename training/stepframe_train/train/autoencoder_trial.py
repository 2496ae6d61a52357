"""Trains one autoencoder variant briefly and scores it, to compare architectures and losses before a full run.

    cd training && /usr/bin/python3 -m stepframe_train.train.autoencoder_trial --steps 1400 --batch 8 --patch 4 --channels 64

Prints the held-out PSNR (val split) and how often the reconstruction keeps the piece a step is about: the
step's colour covers at least half as many pixels of its region as in the reference frame (test split), which
is the ceiling the text probe of generated frames is measured against. One thread, so two trials can run side by side.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from ..config import default_stack
from ..world.metrics import colour_count, probe_target
from ..world.recipes import split
from ..world.render import render_recipe
from .data import load_split
from .evaluate import autoencoder_roundtrip
from .stages import train_vae


def pieces_kept(vae, recipes) -> float:
    kept = []
    for recipe in recipes:
        reference = render_recipe(recipe)
        recon = autoencoder_roundtrip(vae, reference)
        for i, step in enumerate(recipe.steps):
            target = probe_target(recipe, step)
            if target is not None:
                kept.append(colour_count(recon[i], *target) >= 0.5 * colour_count(reference[i], *target))
    return float(np.mean(kept))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1400)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1.5e-3)
    parser.add_argument("--detail-weight", type=float, default=8.0)
    parser.add_argument("--patch", type=int, default=4, help="space-to-depth fold (1: SD's layout)")
    parser.add_argument("--channels", default="64", help="comma-separated stage widths; each after the first halves the size")
    parser.add_argument("--recipes", type=int, default=2500, help="training recipes")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = default_stack("baseline")
    vae_cfg = dataclasses.replace(cfg.vae, patch=args.patch, channels=tuple(int(c) for c in args.channels.split(",")))
    cfg = dataclasses.replace(cfg, vae=vae_cfg)
    started = time.time()
    vae, _, losses = train_vae(cfg, load_split("train", limit=args.recipes), load_split("val", limit=60), args.steps, args.batch,
                               lambda message: print(message, flush=True), seed=11, lr=args.lr, detail_weight=args.detail_weight)
    trained = time.time() - started
    with torch.no_grad():
        kept = pieces_kept(vae, split("test")[:40])
    print(f"patch {args.patch} channels {args.channels} steps {args.steps} batch {args.batch} detail weight {args.detail_weight}: "
          f"held-out PSNR {losses['val_psnr']:.2f} dB, pieces kept {kept:.1%}, training {trained:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
