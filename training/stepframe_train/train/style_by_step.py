"""The style error by position along the chain: does a bundle miss the style at once, or drift away step by step?

    cd training && /usr/bin/python3 -m stepframe_train.train.style_by_step --fuser image_pooling --recipes 16

Scores the checkpoints in --runs as evaluate.py does (the first reference frame given, every later
frame generated from the one before, the bundle's default sampler settings) on the first --recipes
val recipes, then prints the mean style error of the 1st, 2nd, ... generated frame. One thread, so
two fusers can run side by side.
"""
from __future__ import annotations

from . import single_thread  # noqa: F401  (before torch: one thread, so two trials run side by side)

import argparse
from pathlib import Path

import numpy as np
import torch

from ..config import default_stack
from ..export import REPO
from ..models.fusers import FUSER_KINDS
from ..world.metrics import style_error
from ..world.recipes import split
from ..world.render import render_recipe
from .evaluate import evaluate
from .finish import first_stage_checkpoints, sampler_settings, trained_config, trained_sampler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=REPO / "training" / "runs")
    parser.add_argument("--fuser", choices=FUSER_KINDS, required=True)
    parser.add_argument("--recipes", type=int, default=16, help="validation recipes to score")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = trained_config(default_stack("baseline"), first_stage_checkpoints(args.runs)[0])
    sampler, spec, vae = trained_sampler(cfg, args.runs, args.fuser)
    recipes = split("val")[: args.recipes]
    with torch.no_grad():
        _, generated = evaluate({args.fuser: sampler}, vae, recipes, {args.fuser: sampler_settings(spec)})
    by_position: dict[int, list[float]] = {}
    for recipe in recipes:
        reference = render_recipe(recipe)
        for position, frame in enumerate(generated[args.fuser][recipe.recipe_id], start=1):
            by_position.setdefault(position, []).append(style_error(recipe, frame, reference[position]))
    print(f"{args.fuser}, val {args.recipes} recipes: style error by generated step (frames)")
    for position, errors in sorted(by_position.items()):
        print(f"  {position}: {np.mean(errors):.1f} ({len(errors)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
