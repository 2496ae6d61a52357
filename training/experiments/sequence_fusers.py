"""Do the fusers beyond the paper hold the style along the sequence and keep the text (issue 35)?

    cd training && /usr/bin/python3 -m stepframe_train.train_all --runs RUNS --stop-after unet   # the shared base, ~32 min
    /usr/bin/python3 -m experiments.sequence_fusers --runs RUNS --out /tmp/sequence-models
    cd .. && npm run eval -- --models-dir /tmp/sequence-models --out /tmp/eval/sequence

The two shipped in models/ (anchor_concatenation, the default, and anchor_decoupled) were written with
    /usr/bin/python3 -m experiments.sequence_fusers --runs RUNS --out ../models --shared-name sequence-shared --fusers anchor_concatenation anchor_decoupled

Fine-tunes each fuser named (models/sequence_fusers.py, and the paper's concatenation as the control on the same
base) from the text-only UNet in RUNS exactly as train_all fine-tunes the paper's six: FinetuneStage's seed, steps,
batch, change weight and style term, at concatenation's style weight. Two single-threaded processes run side by side
(about 14 min per pair on 2 cores). Each checkpoint goes to RUNS/sequence/KIND.pt as soon as it is done, and a rerun
skips the ones already there, so an interrupted run resumes. Writes a models folder of bundles named by kind, on
RUNS' encoders and autoencoder, which `stepframe eval` scores through the engine.
"""
from __future__ import annotations

from stepframe_train.pipeline import threads  # noqa: F401  (before torch: one thread per process)

import argparse
import multiprocessing as mp
from dataclasses import replace
from pathlib import Path

import torch

from stepframe_train.export import REPO
from stepframe_train.models.fuser_registry import SEQUENCE_FUSER_KINDS
from stepframe_train.pipeline.checkpoints import write_run_bundles
from stepframe_train.pipeline.finetune import finetune_from_runs
from stepframe_train.pipeline.settings import TrainingConfig

CONTROL = "concatenation"


def checkpoint_path(runs: Path, kind: str) -> Path:
    return runs / "sequence" / f"{kind}.pt"


def _fine_tune(job: tuple[str, Path, int | None, float]) -> Path:
    kind, runs, steps, style_weight = job
    path = checkpoint_path(runs, kind)
    if path.exists():
        print(f"[{kind}] reusing {path}", flush=True)
        return path
    torch.set_num_threads(1)
    config = TrainingConfig()
    stage = replace(config.finetune, style_weights={**config.finetune.style_weights, kind: style_weight}, steps=steps or config.finetune.steps)
    unet, fuser, losses = finetune_from_runs(runs, kind, stage, lambda message: print(f"[{kind}] {message}", flush=True), config)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save({"unet": unet.state_dict(), "fuser": fuser.state_dict(), "losses": losses, "steps": stage.steps, "style_weight": style_weight}, partial)
    partial.rename(path)  # never a half-written checkpoint that a rerun would take as done
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=REPO / "training" / "runs")
    parser.add_argument("--fusers", nargs="+", choices=SEQUENCE_FUSER_KINDS + (CONTROL,), default=list(SEQUENCE_FUSER_KINDS) + [CONTROL])
    parser.add_argument("--out", type=Path, required=True, help="a models folder for the bundles")
    parser.add_argument("--steps", type=int, default=None, help="fine-tuning steps (default: the pipeline's)")
    parser.add_argument("--shared-name", default="shared",
                        help="the folder in --out for RUNS' encoders and autoencoder (models/ ships its sequence bundles with sequence-shared, "
                             "beside the paper's six on shared/)")
    parser.add_argument("--style-weight", type=float, default=TrainingConfig().finetune.style_weights[CONTROL],
                        help="the style term's weight for every fuser trained here (default: concatenation's, %(default)g)")
    args = parser.parse_args(argv)
    if not (args.runs / "unet_text.pt").exists():
        parser.error(f"{args.runs / 'unet_text.pt'} is missing: run `python3 -m stepframe_train.train_all --runs {args.runs} --stop-after unet` first")
    jobs = [(kind, args.runs, args.steps, args.style_weight) for kind in args.fusers]
    with mp.get_context("spawn").Pool(2) as pool:
        checkpoints = pool.map(_fine_tune, jobs, chunksize=1)
    written = write_run_bundles(args.out, args.runs, [(kind, path, kind) for kind, path in zip(args.fusers, checkpoints)],
                                {"created_by": "experiments.sequence_fusers", "steps": args.steps or TrainingConfig().finetune.steps, "style_weight": args.style_weight},
                                shared_name=args.shared_name)
    print(f"wrote {', '.join(p.name for p in written)} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
