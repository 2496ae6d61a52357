"""Which autoencoder shape and loss keep the small pieces the text is about?

Trains one autoencoder variant briefly and scores it, to compare architectures and losses before a full run.

    cd training && /usr/bin/python3 -m experiments.autoencoder_trial --steps 1400 --batch 8 --patch 4 --channels 64

The training log's last "vae step" line gives the seconds per step (training only, before the scoring).

Prints the held-out PSNR (val split) and how often the reconstruction keeps the piece a step is about: the text
probe with the reference frame in place of the reconstruction (the step's colour covers at least half as many
pixels of its region, and at least 6), on 40 test recipes. Then, on 64 test recipes and every step after the
first, how the text probe's pass rate moves with its colour tolerance, for the two rows that bound it in the
evaluation: the reconstruction itself and a copy of the previous frame. One thread, so two trials can run side by side.
"""
from __future__ import annotations

from stepframe_train.pipeline import threads  # noqa: F401  (before torch: one thread, so two experiments run side by side)

import argparse
import dataclasses
import time

import numpy as np
import torch

from stepframe_train.config import default_stack
from stepframe_train.world.metrics import PROBE_TOLERANCE, text_probe
from stepframe_train.world.recipes import split
from stepframe_train.world.render import render_recipe
from stepframe_train.pipeline.data import load_split
from stepframe_train.pipeline.evaluate import autoencoder_roundtrip
from stepframe_train.pipeline.autoencoder import train_vae
from stepframe_train.pipeline.settings import TrainingConfig


TOLERANCES = (PROBE_TOLERANCE, 0.06, 0.075, 0.09)


def _probed(results: list[bool | None]) -> float:
    return float(np.mean([r for r in results if r is not None]))


def pieces_kept(vae, recipes) -> float:
    kept = []
    for recipe in recipes:
        reference = render_recipe(recipe)
        recon = autoencoder_roundtrip(vae, reference)
        kept += [text_probe(recipe, step, recon[i], reference[i]) for i, step in enumerate(recipe.steps)]
    return _probed(kept)


def probe_by_tolerance(vae, recipes) -> dict[float, tuple[float, float]]:
    """tolerance -> (pass rate of the reconstruction, pass rate of the previous frame), steps after the first."""
    rows = {tol: ([], []) for tol in TOLERANCES}
    for recipe in recipes:
        reference = render_recipe(recipe)
        recon = autoencoder_roundtrip(vae, reference)
        for i, step in enumerate(recipe.steps[1:], start=1):
            for tol, (own, previous) in rows.items():
                own.append(text_probe(recipe, step, recon[i], recon[i], tol))
                previous.append(text_probe(recipe, step, reference[i - 1], recon[i], tol))
    return {tol: (_probed(own), _probed(previous)) for tol, (own, previous) in rows.items()}


def main(argv: list[str] | None = None) -> int:
    pipeline = TrainingConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1400)
    parser.add_argument("--batch", type=int, default=pipeline.autoencoder.batch)
    parser.add_argument("--lr", type=float, default=pipeline.autoencoder.lr)
    parser.add_argument("--detail-weight", type=float, default=pipeline.autoencoder.detail_weight)
    parser.add_argument("--patch", type=int, default=4, help="space-to-depth fold (1: SD's layout)")
    parser.add_argument("--channels", default="64", help="comma-separated stage widths; each after the first halves the size")
    parser.add_argument("--latent-channels", type=int, default=None, help="default: the stack's (8)")
    parser.add_argument("--recipes", type=int, default=pipeline.recipes, help="training recipes")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = default_stack("baseline")
    vae_cfg = dataclasses.replace(cfg.vae, patch=args.patch, channels=tuple(int(c) for c in args.channels.split(",")),
                                  latent_channels=args.latent_channels or cfg.vae.latent_channels)
    cfg = dataclasses.replace(cfg, vae=vae_cfg)
    started = time.time()
    stage = dataclasses.replace(pipeline.autoencoder, steps=args.steps, batch=args.batch, lr=args.lr, detail_weight=args.detail_weight)
    vae, _, losses = train_vae(cfg, load_split("train", limit=args.recipes), load_split("val", limit=60), stage, lambda message: print(message, flush=True))
    trained = time.time() - started
    with torch.no_grad():
        kept = pieces_kept(vae, split("test")[:40])
        by_tolerance = probe_by_tolerance(vae, split("test")[:64])
    print(f"patch {args.patch} channels {args.channels} steps {args.steps} batch {args.batch} detail weight {args.detail_weight}: "
          f"held-out PSNR {losses['val_psnr']:.2f} dB, pieces kept {kept:.1%}, training {trained:.0f}s")
    for tol, (own, previous) in by_tolerance.items():
        print(f"text probe at colour tolerance {tol}: reconstruction passes {own:.1%}, previous frame passes {previous:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
