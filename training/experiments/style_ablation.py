"""What does the paper's L2 style-consistency term buy each fuser, at the same seeds and steps?

    cd training && /usr/bin/python3 -m experiments.style_ablation --fusers concatenation --out /tmp/ablation
    cd .. && npm run eval -- --models-dir /tmp/ablation --out /tmp/eval/ablation

Fine-tunes each fuser twice from the text-only UNet in --runs (train_all --stop-after unet makes it):
once as the pipeline does (FinetuneStage: its seed, steps and style weight) and once with the style
term off, everything else equal. Two single-threaded processes run side by side. Writes a models
folder of bundles named FUSER_with_style and FUSER_without_style, which `stepframe eval` scores through the engine.
"""
from __future__ import annotations

from stepframe_train.pipeline import threads  # noqa: F401  (before torch: one thread per process)

import argparse
import multiprocessing as mp
from dataclasses import replace
from pathlib import Path

import torch

from stepframe_train.export import REPO
from stepframe_train.models.fusers import FUSER_KINDS
from stepframe_train.pipeline.checkpoints import write_run_bundles
from stepframe_train.pipeline.finetune import finetune_from_runs
from stepframe_train.pipeline.settings import TrainingConfig


def _fine_tune(job: tuple[str, float, Path, int | None]) -> Path:
    kind, weight, runs, steps = job
    torch.set_num_threads(1)
    config = TrainingConfig()
    stage = replace(config.finetune, style_weights={**config.finetune.style_weights, kind: weight}, steps=steps or config.finetune.steps)
    unet, fuser, losses = finetune_from_runs(runs, kind, stage, lambda message: print(f"[{kind} style {weight:g}] {message}", flush=True), config)
    path = runs / "ablation" / f"{kind}_{'with' if weight > 0 else 'without'}_style.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"unet": unet.state_dict(), "fuser": fuser.state_dict(), "losses": losses}, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=REPO / "training" / "runs")
    parser.add_argument("--fusers", nargs="+", choices=[k for k in FUSER_KINDS if k != "baseline"], required=True)
    parser.add_argument("--out", type=Path, required=True, help="a models folder for the ablation's bundles")
    parser.add_argument("--steps", type=int, default=None, help="fine-tuning steps (default: the pipeline's)")
    args = parser.parse_args(argv)
    weights = TrainingConfig().finetune.style_weights
    jobs = [(kind, w, args.runs, args.steps) for kind in args.fusers for w in (weights[kind], 0.0)]
    with mp.get_context("spawn").Pool(2) as pool:
        checkpoints = pool.map(_fine_tune, jobs, chunksize=1)
    written = write_run_bundles(args.out, args.runs, [(kind, path, path.stem) for (kind, _, _, _), path in zip(jobs, checkpoints)],
                                {"created_by": "experiments.style_ablation", "steps": args.steps or TrainingConfig().finetune.steps})
    print(f"wrote {', '.join(p.name for p in written)} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
