"""Which text and image guidance scales should each bundle default to?

Scores the trained bundles at several guidance scales on the validation split, to choose the bundles' defaults.

    cd training && /usr/bin/python3 -m experiments.guidance_sweep --scales 1.5 3 5 --recipes 12
    cd training && /usr/bin/python3 -m experiments.guidance_sweep --text-scales 3 5 7.5 --scales 1.5 --fusers baseline concatenation

Reads the checkpoints train_all left in --runs; the test split stays untouched for the reported figures.
`--scales` are image-guidance scales (the baseline has none and is scored once per text scale).
Two single-threaded workers, as in train_all's evaluation.
"""
from __future__ import annotations

from stepframe_train.pipeline import threads  # noqa: F401  (before torch: one thread, so two experiments run side by side)

import argparse
import dataclasses
import multiprocessing as mp
import os
from pathlib import Path

import torch

from stepframe_train.config import default_stack
from stepframe_train.export import REPO
from stepframe_train.models.fusers import FUSER_KINDS
from stepframe_train.world.recipes import split
from stepframe_train.pipeline.evaluate import evaluate
from stepframe_train.pipeline.checkpoints import first_stage_checkpoints, sampler_settings, trained_config, trained_sampler


def _score(job: tuple) -> tuple[str, float, dict]:
    kind, text_scale, scale, runs, recipes = job
    torch.set_num_threads(1)
    cfg = trained_config(default_stack("baseline"), first_stage_checkpoints(runs)[0])
    sampler, spec, vae = trained_sampler(cfg, runs, kind)
    settings = dataclasses.replace(sampler_settings(spec), guidance_scale=text_scale, image_guidance_scale=scale if spec.image_guidance else None)
    with torch.no_grad():
        metrics, _ = evaluate({kind: sampler}, vae, split("val")[:recipes], {kind: settings})
    return kind, text_scale, scale, metrics[kind]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=REPO / "training" / "runs")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.5, 3.0, 5.0], help="image-guidance scales")
    parser.add_argument("--text-scales", type=float, nargs="+", default=[7.5], help="text-guidance scales (the paper's is 7.5)")
    parser.add_argument("--fusers", nargs="+", choices=FUSER_KINDS, default=[k for k in FUSER_KINDS if k != "baseline"])
    parser.add_argument("--recipes", type=int, default=12, help="validation recipes")
    args = parser.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    jobs = [(kind, text_scale, scale, args.runs, args.recipes) for kind in args.fusers for text_scale in args.text_scales
            for scale in (args.scales if kind != "baseline" else [None])]
    with mp.get_context("spawn").Pool(2) as pool:
        results = pool.map(_score, jobs, chunksize=1)
    print(f"validation split, {args.recipes} recipes ({results[0][3]['probed_steps']} probed steps)")
    print(f"{'fuser':<16} {'text guidance':>13} {'image guidance':>14} {'text probe':>10} {'(showable)':>10} {'style error':>11} {'PSNR':>6}")
    for kind, text_scale, scale, m in results:
        image = "-" if scale is None else f"{scale:g}"
        print(f"{kind:<16} {text_scale:>13g} {image:>14} {m['text_probe_pass']:>10.1%} {m['text_probe_pass_showable']:>10.1%} {m['style_error']:>11.1f} {m['psnr']:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
