"""Fine-tunes one fuser from the shared text-only UNet with a chosen style weight and scores it, to weigh
the paper's style term against text faithfulness before a full run.

    cd training && /usr/bin/python3 -m stepframe_train.train.finetune_trial --fuser concatenation --style-weight 0
    cd training && /usr/bin/python3 -m stepframe_train.train.finetune_trial --fuser baseline --steps 0   # score the text-only UNet itself

Starts from runs/unet_text.pt and the encoded training set that train_all left in --runs and trains as
train_all's fine-tuning stage does (stages.finetune_from_text, the same seed; the baseline without the style
term), but in one process with one thread, so trials can run side by side. Prints the fuser's scores (evaluate.py's protocol, the bundle's default
sampler settings) on the first --recipes val recipes, and the share of generated frames that keep the reference's
vessel shape (metrics.shape_kept_share); the test split stays untouched.
"""
from __future__ import annotations

from . import single_thread  # noqa: F401  (before torch: one thread, so two trials run side by side)

import argparse
import time
from pathlib import Path

import torch

from ..bundle import BundleSpec, trained_defaults
from ..config import default_stack
from ..export import REPO
from ..models.fusers import FUSER_KINDS
from ..models.unet import UNet
from ..stack import build_fuser_for
from ..train_all import STAGE_SEEDS
from ..world.metrics import shape_kept_share
from ..world.recipes import split
from .data import load_split
from .evaluate import evaluate, scores_line
from .finish import first_stage_checkpoints, sampler_over, sampler_settings, trained_config
from .stages import FINETUNE_CHANGE_WEIGHT, FINETUNE_STYLE_WEIGHTS, finetune_from_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=REPO / "training" / "runs")
    parser.add_argument("--fuser", choices=FUSER_KINDS, required=True)
    parser.add_argument("--style-weight", type=float, default=None,
                        help="default: the fuser's in train_all (stages.FINETUNE_STYLE_WEIGHTS); the baseline trains without the term")
    parser.add_argument("--steps", type=int, default=4000, help="fine-tuning steps at batch 32 (0: score the text-only UNet as it is)")
    parser.add_argument("--change-weight", type=float, default=FINETUNE_CHANGE_WEIGHT, help="how much more the loss counts where the frame changed (stages.change_weights)")
    parser.add_argument("--style-on-unchanged", action=argparse.BooleanOptionalAction, default=True,
                        help="the style term counts only the latent pixels the step leaves unchanged (stages.unchanged_mask; on by default, as in train_all)")
    parser.add_argument("--recipes", type=int, default=24, help="validation recipes to score")
    parser.add_argument("--save", type=Path, default=None,
                        help="also write the fine-tuned checkpoint here, in train_all's runs/finetune_<fuser>.pt format")
    args = parser.parse_args(argv)
    if args.style_weight is None or args.fuser == "baseline":
        args.style_weight = FINETUNE_STYLE_WEIGHTS.get(args.fuser, 0.0)
    torch.set_num_threads(1)
    cfg = trained_config(default_stack(args.fuser), first_stage_checkpoints(args.runs)[0])
    text_unet = torch.load(args.runs / "unet_text.pt")["unet"]
    started = time.time()
    if args.steps > 0:
        unet, fuser, losses = finetune_from_text(cfg, load_split("train", limit=2500), torch.load(args.runs / "encoded.pt"), text_unet, args.fuser,
                                                 args.steps, args.style_weight, print, STAGE_SEEDS["finetune"], args.change_weight,
                                                 args.style_on_unchanged)
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
