"""Scores the trained fusers at several image-guidance scales on the validation split, to choose the bundles' default.

    cd training && /usr/bin/python3 -m stepframe_train.train.guidance_sweep --scales 1.5 3 5 --recipes 12

Reads the checkpoints train_all left in --runs; the test split stays untouched for the reported figures.
Text guidance stays at the paper's 7.5. Two single-threaded workers, as in train_all's evaluation.
"""
from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import os
from pathlib import Path

import torch

from ..config import default_stack
from ..export import REPO
from ..models.fusers import FUSER_KINDS
from ..world.recipes import split
from .evaluate import evaluate
from .finish import first_stage_checkpoints, sampler_settings, trained_config, trained_sampler


def _score(job: tuple) -> tuple[str, float, dict]:
    kind, scale, runs, recipes = job
    torch.set_num_threads(1)
    cfg = trained_config(default_stack("baseline"), first_stage_checkpoints(runs)[0])
    sampler, spec, vae = trained_sampler(cfg, runs, kind)
    settings = dataclasses.replace(sampler_settings(spec), image_guidance_scale=scale)
    with torch.no_grad():
        metrics, _ = evaluate({kind: sampler}, vae, split("val")[:recipes], {kind: settings})
    return kind, scale, metrics[kind]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=REPO / "training" / "runs")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.5, 3.0, 5.0])
    parser.add_argument("--recipes", type=int, default=12, help="validation recipes")
    args = parser.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    jobs = [(kind, scale, args.runs, args.recipes) for kind in FUSER_KINDS if kind != "baseline" for scale in args.scales]
    with mp.get_context("spawn").Pool(2) as pool:
        results = pool.map(_score, jobs, chunksize=1)
    print(f"validation split, {args.recipes} recipes ({results[0][2]['probed_steps']} probed steps), text guidance 7.5")
    print(f"{'fuser':<16} {'image guidance':>14} {'text probe':>10} {'style error':>11} {'PSNR':>6}")
    for kind, scale, m in results:
        print(f"{kind:<16} {scale:>14g} {m['text_probe_pass']:>10.1%} {m['style_error']:>11.1f} {m['psnr']:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
