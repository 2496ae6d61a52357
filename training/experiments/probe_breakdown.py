"""When a bundle fails the text probe, is the ingredient missing, blurred, misplaced or off-colour?

Splits a trained bundle's text probe by what the step draws, to tell a blur of small pieces from a missing ingredient.

    cd training && /usr/bin/python3 -m experiments.probe_breakdown --fuser baseline
    cd training && /usr/bin/python3 -m experiments.probe_breakdown --fuser concatenation --recipes 12
    cd training && /usr/bin/python3 -m experiments.probe_breakdown --split test --recipes 64

Generates the first --recipes recipes of --split (val unless told) as evaluate.py does (bundle defaults, each step after the reference's
first frame conditioned on the previous generated one) and prints, per probe kind (world.metrics.probe_kind), the
pass rate and the mean number of pixels of the step's colour in its region: in the reference, in the autoencoder's
reconstruction and in the generated frame, then anywhere in the reference and the generated frame (more in the
generated frame than in the reference: the colour is drawn, but outside its region). Then the pass rate per ingredient, for
the generated frame and the reconstruction (the dark ones fail both). Then the pass rate at looser chromaticity tolerances, for the generated
frame and the reconstruction against the same bar, which separates a shifted colour from an absent one.
One thread, so two bundles can be broken down side by side.
"""
from __future__ import annotations

from stepframe_train.pipeline import threads  # noqa: F401  (before torch: one thread, so two experiments run side by side)

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from stepframe_train.config import default_stack
from stepframe_train.export import REPO
from stepframe_train.models.fusers import FUSER_KINDS
from stepframe_train.world.metrics import PROBE_TOLERANCE, colour_count, probe_kind, probe_target, text_probe
from stepframe_train.world.recipes import split
from stepframe_train.world.render import render_recipe
from stepframe_train.pipeline.evaluate import autoencoder_roundtrip, evaluate
from stepframe_train.pipeline.checkpoints import first_stage_checkpoints, sampler_settings, trained_config, trained_sampler

EVERYWHERE = np.ones((64, 64), bool)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=REPO / "training" / "runs")
    parser.add_argument("--fuser", choices=FUSER_KINDS, default="baseline")
    parser.add_argument("--split", choices=("val", "test"), default="val", help="the split whose first --recipes recipes are generated")
    parser.add_argument("--recipes", type=int, default=24, help="recipes to generate")
    parser.add_argument("--tolerances", type=float, nargs="+", default=[PROBE_TOLERANCE, 0.06, 0.075, 0.09, 0.12])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = trained_config(default_stack(args.fuser), first_stage_checkpoints(args.runs)[0])
    sampler, spec, vae = trained_sampler(cfg, args.runs, args.fuser)
    recipes = split(args.split)[: args.recipes]
    with torch.no_grad():
        metrics, generated = evaluate({args.fuser: sampler}, vae, recipes, {args.fuser: sampler_settings(spec)})

    by_kind: dict[str, list[tuple]] = defaultdict(list)
    by_subject: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    by_tolerance: dict[float, list[tuple[bool, bool]]] = defaultdict(list)
    for recipe in recipes:
        reference = render_recipe(recipe)
        with torch.no_grad():
            recon = autoencoder_roundtrip(vae, reference)
        for i, step in enumerate(recipe.steps[1:], start=1):
            target = probe_target(recipe, step)
            if target is None:
                continue
            rgb, region = target
            frame = generated[args.fuser][recipe.recipe_id][i - 1]
            by_kind[probe_kind(step)].append((text_probe(recipe, step, frame, recon[i]), colour_count(reference[i], rgb, region),
                                              colour_count(recon[i], rgb, region), colour_count(frame, rgb, region),
                                              colour_count(reference[i], rgb, EVERYWHERE), colour_count(frame, rgb, EVERYWHERE)))
            by_subject[step.subject].append((text_probe(recipe, step, frame, recon[i]), text_probe(recipe, step, recon[i], recon[i])))
            for tolerance in args.tolerances:
                by_tolerance[tolerance].append((text_probe(recipe, step, frame, recon[i], tolerance),
                                                text_probe(recipe, step, recon[i], recon[i], tolerance)))

    m = metrics[args.fuser]
    print(f"{args.fuser}, {len(recipes)} {args.split} recipes: text probe {m['text_probe_pass']:.1%} ({m['probed_steps']} steps)")
    print("| kind | steps | probe | pixels: reference | reconstruction | generated | whole frame: reference | generated |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind, rows in sorted(by_kind.items()):
        a = np.array(rows, np.float64)
        print(f"| {kind} | {len(rows)} | {a[:, 0].mean():.0%} | " + " | ".join(f"{a[:, c].mean():.0f}" for c in range(1, 6)) + " |")
    print("| subject | steps | generated | reconstruction |\n| --- | --- | --- | --- |")
    for subject, rows in sorted(by_subject.items()):
        a = np.array(rows, np.float64)
        print(f"| {subject} | {len(rows)} | {a[:, 0].mean():.0%} | {a[:, 1].mean():.0%} |")
    print("| tolerance | generated | reconstruction |\n| --- | --- | --- |")
    for tolerance, rows in by_tolerance.items():
        a = np.array(rows, np.float64)
        print(f"| {tolerance:g} | {a[:, 0].mean():.0%} | {a[:, 1].mean():.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
