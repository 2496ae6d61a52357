"""How much text faithfulness does the paper's style term cost a fuser, at a given weight and length?

Fine-tunes one fuser from the shared text-only UNet with a chosen style weight and scores it.

    cd training && /usr/bin/python3 -m experiments.finetune_trial --fuser concatenation --style-weight 0
    cd training && /usr/bin/python3 -m experiments.finetune_trial --fuser baseline --steps 0   # score the text-only UNet itself

Starts from runs/unet_text.pt and the encoded training set that train_all left in --runs and trains as
train_all's fine-tuning stage does (pipeline/finetune.finetune_from_text, TrainingConfig's settings and seed; the baseline without the style
term), but in one process with one thread, so trials can run side by side. Prints the fuser's scores (evaluate.py's protocol, the bundle's default
sampler settings) on the first --recipes val recipes, and the share of generated frames that keep the reference's
vessel shape (metrics.shape_kept_share); the test split stays untouched.
"""
from __future__ import annotations

from stepframe_train.pipeline import threads  # noqa: F401  (before torch: one thread, so two experiments run side by side)

import argparse
import time
from pathlib import Path

import torch

from stepframe_train.bundle import BundleSpec, trained_defaults
from stepframe_train.config import default_stack
from stepframe_train.export import REPO
from stepframe_train.models.fusers import FUSER_KINDS
from stepframe_train.models.unet import UNet
from stepframe_train.stack import build_fuser_for
from stepframe_train.world.metrics import shape_kept_share
from stepframe_train.world.recipes import split
from stepframe_train.pipeline.data import load_split
from stepframe_train.pipeline.evaluate import evaluate, scores_line
from stepframe_train.pipeline.checkpoints import first_stage_checkpoints, sampler_over, sampler_settings, trained_config
from stepframe_train.pipeline.finetune import finetune_from_text
from dataclasses import replace

from stepframe_train.pipeline.settings import TrainingConfig


def main(argv: list[str] | None = None) -> int:
    stage = TrainingConfig().finetune
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=REPO / "training" / "runs")
    parser.add_argument("--fuser", choices=FUSER_KINDS, required=True)
    parser.add_argument("--style-weight", type=float, default=None,
                        help="default: the fuser's in train_all (FinetuneStage.style_weights); the baseline trains without the term")
    parser.add_argument("--steps", type=int, default=stage.steps, help=f"fine-tuning steps at batch {stage.batch} (0: score the text-only UNet as it is)")
    parser.add_argument("--change-weight", type=float, default=stage.losses.change_weight, help="how much more the loss counts where the frame changed (denoising.change_weights)")
    parser.add_argument("--style-on-unchanged", action=argparse.BooleanOptionalAction, default=stage.losses.style_on_unchanged,
                        help="the style term counts only the latent pixels the step leaves unchanged (denoising.unchanged_mask; on by default, as in train_all)")
    parser.add_argument("--recipes", type=int, default=24, help="validation recipes to score")
    parser.add_argument("--save", type=Path, default=None,
                        help="also write the fine-tuned checkpoint here, in train_all's runs/finetune_<fuser>.pt format")
    args = parser.parse_args(argv)
    if args.style_weight is None or args.fuser == "baseline":
        args.style_weight = stage.style_weights.get(args.fuser, 0.0)
    stage = replace(stage, steps=args.steps, style_weights={**stage.style_weights, args.fuser: args.style_weight},
                    losses=replace(stage.losses, change_weight=args.change_weight, style_on_unchanged=args.style_on_unchanged))
    torch.set_num_threads(1)
    cfg = trained_config(default_stack(args.fuser), first_stage_checkpoints(args.runs)[0])
    text_unet = torch.load(args.runs / "unet_text.pt")["unet"]
    started = time.time()
    if args.steps > 0:
        unet, fuser, losses = finetune_from_text(cfg, load_split("train", limit=TrainingConfig().recipes), torch.load(args.runs / "encoded.pt"),
                                                 text_unet, args.fuser, stage, print)
        if args.save:
            torch.save({"unet": unet.state_dict(), "fuser": fuser.state_dict(), "losses": losses}, args.save)
    else:
        unet, fuser, losses = UNet(cfg.unet), build_fuser_for(cfg), {}
        unet.load_state_dict(text_unet)
        fuser.start_from_text()
    spec = BundleSpec(name=args.fuser, fuser_kind=args.fuser, unet=unet.eval(), fuser=fuser.eval(), image_guidance=args.fuser != "baseline",
                      defaults=trained_defaults(args.fuser))
    sampler, vae = sampler_over(cfg, spec, args.runs)
    with torch.no_grad():
        recipes = split("val")[: args.recipes]
        metrics, generated = evaluate({args.fuser: sampler}, vae, recipes, {args.fuser: sampler_settings(spec)})
    m = metrics[args.fuser]
    print(f"{args.fuser}, style weight {args.style_weight:g}{' on unchanged pixels' if args.style_on_unchanged else ''}, change weight {args.change_weight:g}, {args.steps} steps in {time.time() - started:.0f}s, losses {losses}")
    print(f"{scores_line(args.recipes, m)}, vessel shape kept on {shape_kept_share(recipes, generated[args.fuser]):.0%} of frames")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
