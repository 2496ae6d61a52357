"""Retrains every model from scratch on the recipe world and exports the six bundles into models/.

    cd training && /usr/bin/python3 -m stepframe_train.train_all --out ../models

Stages (two single-threaded jobs run side by side where stages are independent; on 2 cores that
gives 2-3x the throughput of one job on two threads):
  1. autoencoder  ||  CLIP text and image encoders (contrastive)
  2. frozen encoders encode the training set once
  3. a text-only UNet, the shared starting point of every fuser (two processes, one model), its
     loss weighted where a frame changed from the one before, as in stage 4
  4. six fine-tunings (UNet + fuser): baseline, concatenation, text_pooling, image_pooling,
     attend_to_image, attend_to_text, two at a time
  5. the autoencoder's decoder, trained further on the frozen encoder's latents (nothing trained
     on the latents changes)
  6. export, evaluation on the test split, contact sheet, models/README.md
Seeds are fixed, so a rerun retrains the same models (up to float summation order).
"""
from __future__ import annotations

import argparse
import ctypes
import functools
import json
import multiprocessing as mp
import os
import signal
import sys
import time
from pathlib import Path

import torch

from .config import default_stack
from .export import DEFAULT_TOKENIZER, REPO, world_token_map
from .models.fusers import FUSER_KINDS
from .train.single_thread import THREAD_VARIABLES  # torch is loaded by now, so this process keeps its threads
from .train.stages import FINETUNE_CHANGE_WEIGHT, FINETUNE_STYLE_WEIGHTS, style_weights_from

STAGE_SEEDS = {"vae": 11, "clip": 12, "unet": 13, "finetune": 14, "decoder": 15}


def _log(path: Path):
    def log(message: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {message}"
        print(line, flush=True)
        with path.open("a") as f:
            f.write(line + "\n")
    return log


def _die_with_parent(parent: int) -> None:
    """Pool worker initializer: a worker ends when train_all does, even when train_all is killed outright (SIGKILL
    skips the pool's own clean-up, and an orphaned worker would train on, holding a core, for up to half an hour)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG (Linux)
    except (AttributeError, OSError):
        return  # not Linux: the pool's own clean-up on a normal exit or SIGTERM still applies
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _pool(ctx, processes: int = 2):
    return ctx.Pool(processes, initializer=_die_with_parent, initargs=(os.getpid(),))


@functools.lru_cache(maxsize=1)
def _train_split(recipes: int):
    """Per worker process: a pool worker runs several fine-tunings and need not re-render the world for each."""
    from .train.data import load_split

    return load_split("train", limit=recipes)


@functools.lru_cache(maxsize=1)
def _encoded(runs: Path) -> dict:
    return torch.load(runs / "encoded.pt")


def _job(args: tuple) -> None:
    """One stage in a worker process with one thread."""
    stage, runs, options = args
    torch.set_num_threads(1)
    from .train import stages
    from .train.data import load_split

    log = _log(runs / f"{stage.replace(':', '_')}.log")
    cfg = default_stack("baseline")
    data = _train_split(options["recipes"])
    if stage == "vae":
        vae, scaling, losses = stages.train_vae(cfg, data, load_split("val"), options["vae_steps"], 8, log, STAGE_SEEDS["vae"],
                                                   detail_weight=options["vae_detail_weight"], kl_weight=options["vae_kl_weight"])
        (runs / "decoder.pt").unlink(missing_ok=True)  # refined from the autoencoder this one replaces
        torch.save({"vae": vae.state_dict(), "scaling": scaling, "losses": losses}, runs / "vae.pt")
    elif stage == "clip":
        token_map = world_token_map(DEFAULT_TOKENIZER, cfg.text.embedding_rows)
        te, ie, losses = stages.train_clip(cfg, data, token_map, options["clip_steps"], 128, log, STAGE_SEEDS["clip"])
        torch.save({"text_encoder": te.state_dict(), "image_encoder": ie.state_dict(), "token_map": token_map, "losses": losses}, runs / "clip.pt")
    elif stage.startswith("unet:"):
        from .train import data_parallel

        rank = int(stage.split(":", 1)[1])
        data_parallel.join(runs / "unet.rendezvous", rank, 2)
        unet, _, losses = stages.train_unet(cfg, data, _encoded(runs), options["unet_steps"], 32, log if rank == 0 else (lambda _: None), STAGE_SEEDS["unet"],
                                            fuser_kind="baseline", lr=1e-3, image_dropout=1.0, data_rank=rank, sync_gradients=data_parallel.average_gradients,
                                            change_weight=options["unet_change_weight"])
        data_parallel.leave()
        if rank == 0:
            torch.save({"unet": unet.state_dict(), "losses": losses}, runs / "unet_text.pt")
    elif stage.startswith("finetune:"):
        kind = stage.split(":", 1)[1]
        unet, fuser, losses = stages.finetune_from_text(cfg, data, _encoded(runs), torch.load(runs / "unet_text.pt")["unet"], kind,
                                                        options["finetune_steps"], options["style_weights"].get(kind, 0.0), log, STAGE_SEEDS["finetune"],
                                                        options["change_weight"], options["style_on_unchanged"])
        torch.save({"unet": unet.state_dict(), "fuser": fuser.state_dict(), "losses": losses}, runs / f"finetune_{kind}.pt")


def _refine_decoder(runs: Path, options: dict, log) -> None:
    """Stage 5, in this process: writes runs/decoder.pt, or removes it for --decoder-steps 0. One thread: at batch 8
    a second one made a step slower here (0.095 s against about 0.07 s on one)."""
    from .train import stages
    from .train.data import load_split
    from .train.finish import refined_decoder_checkpoint, shared_models

    (runs / "decoder.pt").unlink(missing_ok=True)
    if not options["decoder_steps"]:
        return
    vae_ckpt, clip_ckpt = torch.load(runs / "vae.pt"), torch.load(runs / "clip.pt")
    _, _, vae = shared_models(default_stack("baseline"), vae_ckpt, clip_ckpt)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    vae, losses = stages.refine_decoder(vae, _train_split(options["recipes"]), load_split("val"), options["decoder_steps"], 8, log,
                                        STAGE_SEEDS["decoder"], detail_weight=options["decoder_detail_weight"])
    torch.save(refined_decoder_checkpoint(vae, losses, vae_ckpt), runs / "decoder.pt")
    torch.set_num_threads(threads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "models")
    parser.add_argument("--runs", type=Path, default=REPO / "training" / "runs")
    parser.add_argument("--recipes", type=int, default=2500, help="training recipes (of 6000 in the split)")
    parser.add_argument("--vae-steps", type=int, default=10000, help="autoencoder steps at batch 8")
    parser.add_argument("--vae-detail-weight", type=float, default=8.0, help="how much more the autoencoder's loss counts small details (train/stages.detail_weights)")
    parser.add_argument("--vae-kl-weight", type=float, default=1e-6, help="the autoencoder's KL weight (SD's 1e-6; docs/results.md: 1e-4 scored no better in a full run)")
    parser.add_argument("--decoder-steps", type=int, default=0, help="steps at batch 8 that refine the decoder alone (0, the default: keep the jointly trained one; docs/results.md measured 8000)")
    parser.add_argument("--decoder-detail-weight", type=float, default=24.0, help="the decoder refinement's detail weight")
    parser.add_argument("--clip-steps", type=int, default=1500)
    parser.add_argument("--unet-steps", type=int, default=5000, help="text-only UNet steps at batch 2 x 32")
    parser.add_argument("--unet-change-weight", type=float, default=1.0,
                        help="the change weight in the text-only stage (stages.change_weights; 0: plain loss; default %(default)g; docs/results.md)")
    parser.add_argument("--finetune-steps", type=int, default=4000, help="fine-tuning steps per fuser at batch 32 (docs/results.md: 4000 against 2000)")
    parser.add_argument("--style-weight", nargs="+", default=[], metavar="[FUSER=]W",
                        help="weight of the paper's style-consistency term: W for every image-conditioned fuser, FUSER=W for one "
                             "(the baseline trains without it; defaults: " + ", ".join(f"{k}={w:g}" for k, w in FINETUNE_STYLE_WEIGHTS.items()) + ")")
    parser.add_argument("--change-weight", type=float, default=FINETUNE_CHANGE_WEIGHT, help="fine-tuning: how much more the denoising loss counts where a frame differs from the one before (train/stages.change_weights; 0: plain loss; default %(default)g)")
    parser.add_argument("--style-on-unchanged", action=argparse.BooleanOptionalAction, default=True,
                        help="the style term counts only the latent pixels a step leaves unchanged (stages.unchanged_mask; on by default: on the "
                             "test split it raised four fusers' text probe by 12 to 19 points, attend_to_text's by none, docs/results.md)")
    parser.add_argument("--eval-recipes", type=int, default=None, help="test recipes to score (default: the whole test split, 64)")
    parser.add_argument("--skip-to", choices=("encode", "unet", "finetune", "decoder", "export"), default=None, help="reuse earlier stages' files in --runs")
    args = parser.parse_args(argv)
    try:
        args.style_weights = style_weights_from(args.style_weight)
    except ValueError as error:
        parser.error(str(error))
    args.runs.mkdir(parents=True, exist_ok=True)
    log = _log(args.runs / "train_all.log")
    options = {k: getattr(args, k) for k in ("recipes", "vae_steps", "vae_detail_weight", "vae_kl_weight", "clip_steps", "unet_steps", "finetune_steps", "style_weights", "change_weight",
                                       "unet_change_weight", "decoder_steps", "decoder_detail_weight", "style_on_unchanged")}
    order = ["first", "encode", "unet", "finetune", "decoder", "export"]
    skip = order.index(args.skip_to) if args.skip_to else 0
    # Stage timings persist in --runs, so that a resumed run still reports the wall time of every stage behind its files.
    timings_file = args.runs / "timings.json"
    timings: dict[str, float] = json.loads(timings_file.read_text()) if skip and timings_file.exists() else {}
    ctx = mp.get_context("spawn")
    # SIGTERM (kill's default) then unwinds like Ctrl-C: the pools' `with` blocks terminate their workers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # Workers run one thread each; OpenBLAS's own pool would otherwise spin on the other core.
    for var in THREAD_VARIABLES:
        os.environ[var] = "1"

    def timed(name: str, fn) -> None:
        t0 = time.time()
        fn()
        timings[name] = round(time.time() - t0, 1)
        timings_file.write_text(json.dumps(timings, indent=1) + "\n")
        log(f"stage {name} took {timings[name]:.0f}s")

    def in_pair(jobs: list) -> None:
        with _pool(ctx) as pool:
            pool.map(_job, jobs, chunksize=1)

    if skip <= 0:
        timed("autoencoder || clip", lambda: in_pair([("vae", args.runs, options), ("clip", args.runs, options)]))
    torch.set_num_threads(2)
    from .train import stages
    from .train.data import load_split
    from .train.finish import finish, first_stage_checkpoints, shared_models

    cfg = default_stack("baseline")
    vae_ckpt, clip_ckpt = first_stage_checkpoints(args.runs)
    if skip <= 1:
        te, ie, vae = shared_models(cfg, vae_ckpt, clip_ckpt)
        data = load_split("train", limit=args.recipes)
        timed("encode", lambda: torch.save(stages.encode_all(vae, vae_ckpt["scaling"], te, ie, data), args.runs / "encoded.pt"))
    if skip <= 2:
        (args.runs / "unet.rendezvous").unlink(missing_ok=True)
        # One model, two processes of one thread each, gradients averaged (train/data_parallel.py): batch 2 x 32.
        timed("text-only unet", lambda: in_pair([(f"unet:{rank}", args.runs, options) for rank in range(2)]))
    if skip <= 3:
        timed("fine-tune six fusers", lambda: in_pair([(f"finetune:{k}", args.runs, options) for k in FUSER_KINDS]))
    if skip <= 4:
        timed("decoder", lambda: _refine_decoder(args.runs, options, log))
        vae_ckpt, clip_ckpt = first_stage_checkpoints(args.runs)
    with _pool(ctx) as pool:
        finish(args, options, cfg, vae_ckpt, clip_ckpt, timings, log, pool)
    return 0


if __name__ == "__main__":
    sys.exit(main())
