"""Does a bundle miss the style at once, or drift away from it step by step along the chain?

The style error by position along the chain.

    cd training && /usr/bin/python3 -m experiments.style_by_step --fuser image_pooling --recipes 16

Scores the checkpoints in --runs as evaluate.py does (the first reference frame given, every later
frame generated from the one before, the bundle's default sampler settings or --image-guidance) on the first --recipes
val recipes, then prints, for the 1st, 2nd, ... generated frame, the mean style error and its two parts
(table and vessel rim), and how often the frame keeps the reference's vessel shape (metrics.drawn_vessel_shape;
a third of the frames by chance, with three shapes). One thread, so two fusers can run side by side.
"""
from __future__ import annotations

from stepframe_train.pipeline import threads  # noqa: F401  (before torch: one thread, so two experiments run side by side)

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from stepframe_train.config import default_stack
from stepframe_train.export import REPO
from stepframe_train.models.fusers import FUSER_KINDS
from stepframe_train.world.metrics import style_rows_by_position
from stepframe_train.world.recipes import split
from stepframe_train.pipeline.evaluate import evaluate
from stepframe_train.pipeline.checkpoints import first_stage_checkpoints, sampler_settings, trained_config, trained_sampler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=REPO / "training" / "runs")
    parser.add_argument("--fuser", choices=FUSER_KINDS, required=True)
    parser.add_argument("--recipes", type=int, default=16, help="validation recipes to score")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="the UNet and fuser from this checkpoint (finetune_trial --save) instead of runs/finetune_<fuser>.pt")
    parser.add_argument("--image-guidance", type=float, default=None, help="image guidance scale (default: the bundle's own)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = trained_config(default_stack("baseline"), first_stage_checkpoints(args.runs)[0])
    sampler, spec, vae = trained_sampler(cfg, args.runs, args.fuser, args.checkpoint)
    recipes = split("val")[: args.recipes]
    with torch.no_grad():
        settings = sampler_settings(spec)
        if args.image_guidance is not None and spec.image_guidance:
            settings = dataclasses.replace(settings, image_guidance_scale=args.image_guidance)
        _, generated = evaluate({args.fuser: sampler}, vae, recipes, {args.fuser: settings})
    by_position = style_rows_by_position(recipes, generated[args.fuser])
    print(f"{args.fuser}, val {args.recipes} recipes, by generated step: style error (table, rim), vessel shape kept, frames")
    for position, rows in sorted(by_position.items()):
        table, rim, kept = np.mean(rows, axis=0)
        print(f"  {position}: {(table + rim) / 2:.1f} ({table:.1f}, {rim:.1f}), shape {kept:.0%}, {len(rows)}")
    table, rim, kept = np.mean([row for rows in by_position.values() for row in rows], axis=0)
    print(f"  all: {(table + rim) / 2:.1f} ({table:.1f}, {rim:.1f}), shape {kept:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
