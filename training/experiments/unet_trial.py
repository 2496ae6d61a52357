"""Which text-only UNet shape learns most in the same wall time?

Trains one text-only UNet variant briefly and scores it, to compare architectures before a full run.

    cd training && /usr/bin/python3 -m experiments.unet_trial --steps 3800 --channels 32 48 48 --cross-attention-from-level 1

Starts from the autoencoder, CLIP encoders and encoded training set that train_all left in --runs, and
trains as train_all's text-only stage does (TrainingConfig.text_unet: its seed, learning rate and losses, images always dropped) but in one process
at batch 32. Prints the parameter count, seconds per step, the final smoothed denoising loss, and the
baseline's scores (evaluate.py's protocol, bundle defaults) on the first --recipes val recipes.
One thread, so trials can run side by side; compare them at equal wall time, not equal steps.
"""
from __future__ import annotations

from stepframe_train.pipeline import threads  # noqa: F401  (before torch: one thread, so two experiments run side by side)

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from stepframe_train.bundle import BundleSpec
from stepframe_train.config import default_stack
from stepframe_train.export import REPO
from stepframe_train.reference_sampler import SamplerSettings
from stepframe_train.world.recipes import split
from stepframe_train.pipeline.data import load_split
from stepframe_train.pipeline.evaluate import evaluate, scores_line
from stepframe_train.pipeline.checkpoints import first_stage_checkpoints, sampler_over, trained_config
from stepframe_train.pipeline.denoising import train_unet
from stepframe_train.pipeline.settings import TrainingConfig


def main(argv: list[str] | None = None) -> int:
    pipeline = TrainingConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=REPO / "training" / "runs")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--channels", type=int, nargs="+", default=None, help="UNet widths per level (default: the default preset's)")
    parser.add_argument("--cross-attention-from-level", type=int, default=None)
    parser.add_argument("--recipes", type=int, default=24, help="validation recipes to score")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = trained_config(default_stack("baseline"), first_stage_checkpoints(args.runs)[0])
    changes = {"channels": tuple(args.channels) if args.channels else None, "cross_attention_from_level": args.cross_attention_from_level}
    cfg = dataclasses.replace(cfg, unet=dataclasses.replace(cfg.unet, **{k: v for k, v in changes.items() if v is not None}))
    data = load_split("train", pipeline.world_seed, limit=pipeline.recipes)
    started = time.time()
    # train_all's text-only stage (seed, learning rate, images always dropped), in one process instead of two.
    stage = dataclasses.replace(pipeline.text_unet, steps=args.steps)
    unet, fuser, losses = train_unet(cfg, data, torch.load(args.runs / "encoded.pt"), stage, print, fuser_kind="baseline")
    seconds = time.time() - started
    sampler, vae = sampler_over(cfg, BundleSpec(name="baseline", fuser_kind="baseline", unet=unet, fuser=fuser), args.runs)
    with torch.no_grad():
        metrics, _ = evaluate({"baseline": sampler}, vae, split("val")[: args.recipes], {"baseline": SamplerSettings(seed=pipeline.sampling_seed)})
    m = metrics["baseline"]
    print(f"unet {cfg.unet.channels} cross-attention from level {cfg.unet.cross_attention_from_level}: "
          f"{sum(p.numel() for p in unet.parameters())} parameters, {seconds / args.steps:.3f} s/step, loss {losses['denoise']:.4f}")
    print(scores_line(args.recipes, m))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
