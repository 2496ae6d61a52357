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
Every setting (seeds, steps, batch sizes, learning rates, loss weights) is in pipeline/settings.py (`TrainingConfig`);
the flags below override the most used ones. Seeds are fixed, so a rerun retrains the same models (up to float
summation order). It writes only to --runs, --out and --contact-sheet.
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
from dataclasses import replace
from pathlib import Path

import torch

from .config import default_stack
from .export import DEFAULT_TOKENIZER, REPO, world_token_map
from .models.fusers import FUSER_KINDS
from .pipeline.log import file_log, quiet
from .pipeline.settings import TrainingConfig, style_weights_from
from .pipeline.threads import THREAD_VARIABLES  # torch is loaded by now, so this process keeps its threads


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
def _train_split(recipes: int, world_seed: int):
    """Per worker process: a pool worker runs several fine-tunings and need not re-render the world for each."""
    from .pipeline.data import load_split

    return load_split("train", world_seed, limit=recipes)


@functools.lru_cache(maxsize=1)
def _encoded(runs: Path) -> dict:
    return torch.load(runs / "encoded.pt")


def _job(args: tuple) -> None:
    """One stage in a worker process with one thread."""
    stage, runs, config = args
    torch.set_num_threads(1)
    from .pipeline.data import load_split

    log = file_log(runs / f"{stage.replace(':', '_')}.log")
    cfg = default_stack("baseline")
    data = _train_split(config.recipes, config.world_seed)
    if stage == "vae":
        from .pipeline.autoencoder import train_vae

        vae, scaling, losses = train_vae(cfg, data, load_split("val", config.world_seed), config.autoencoder, log)
        (runs / "decoder.pt").unlink(missing_ok=True)  # refined from the autoencoder this one replaces
        torch.save({"vae": vae.state_dict(), "scaling": scaling, "losses": losses}, runs / "vae.pt")
    elif stage == "clip":
        from .pipeline.contrastive import train_clip

        token_map = world_token_map(DEFAULT_TOKENIZER, cfg.text.embedding_rows)
        te, ie, losses = train_clip(cfg, data, token_map, config.contrastive, log)
        torch.save({"text_encoder": te.state_dict(), "image_encoder": ie.state_dict(), "token_map": token_map, "losses": losses}, runs / "clip.pt")
    elif stage.startswith("unet:"):
        from .pipeline import data_parallel
        from .pipeline.denoising import train_unet

        rank = int(stage.split(":", 1)[1])
        data_parallel.join(runs / "unet.rendezvous", rank, config.text_unet_processes)
        unet, _, losses = train_unet(cfg, data, _encoded(runs), config.text_unet, log if rank == 0 else quiet, fuser_kind="baseline",
                                     data_rank=rank, sync_gradients=data_parallel.average_gradients)
        data_parallel.leave()
        if rank == 0:
            torch.save({"unet": unet.state_dict(), "losses": losses}, runs / "unet_text.pt")
    elif stage.startswith("finetune:"):
        from .pipeline.finetune import finetune_from_text

        kind = stage.split(":", 1)[1]
        unet, fuser, losses = finetune_from_text(cfg, data, _encoded(runs), torch.load(runs / "unet_text.pt")["unet"], kind, config.finetune, log)
        torch.save({"unet": unet.state_dict(), "fuser": fuser.state_dict(), "losses": losses}, runs / f"finetune_{kind}.pt")


def _refine_decoder(runs: Path, config: TrainingConfig, log) -> None:
    """Stage 5, in this process: writes runs/decoder.pt, or removes it for --decoder-steps 0. One thread: at batch 8
    a second one made a step slower here (0.095 s against about 0.07 s on one)."""
    from .pipeline.autoencoder import refine_decoder
    from .pipeline.checkpoints import refined_decoder_checkpoint, shared_models
    from .pipeline.data import load_split

    (runs / "decoder.pt").unlink(missing_ok=True)
    if not config.decoder.steps:
        return
    vae_ckpt, clip_ckpt = torch.load(runs / "vae.pt"), torch.load(runs / "clip.pt")
    _, _, vae = shared_models(default_stack("baseline"), vae_ckpt, clip_ckpt)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    vae, losses = refine_decoder(vae, _train_split(config.recipes, config.world_seed), load_split("val", config.world_seed), config.decoder, log)
    torch.save(refined_decoder_checkpoint(vae, losses, vae_ckpt), runs / "decoder.pt")
    torch.set_num_threads(threads)


def parse_config(argv: list[str] | None) -> tuple[TrainingConfig, argparse.Namespace]:
    """The command line as a TrainingConfig (its defaults are TrainingConfig's) and the paths."""
    d = TrainingConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "models")
    parser.add_argument("--runs", type=Path, default=REPO / "training" / "runs")
    parser.add_argument("--contact-sheet", type=Path, default=None, help="where the contact sheet goes (default: OUT/contact-sheet.png)")
    parser.add_argument("--recipes", type=int, default=d.recipes, help="training recipes (of 6000 in the split)")
    parser.add_argument("--vae-steps", type=int, default=d.autoencoder.steps, help="autoencoder steps at batch %d" % d.autoencoder.batch)
    parser.add_argument("--vae-detail-weight", type=float, default=d.autoencoder.detail_weight, help="how much more the autoencoder's loss counts small details (pipeline/autoencoder.detail_weights)")
    parser.add_argument("--vae-kl-weight", type=float, default=d.autoencoder.kl_weight, help="the autoencoder's KL weight (SD's 1e-6)")
    parser.add_argument("--decoder-steps", type=int, default=d.decoder.steps, help="steps that refine the decoder alone (0, the default: keep the jointly trained one; docs/experiments.md measured 8000)")
    parser.add_argument("--decoder-detail-weight", type=float, default=d.decoder.detail_weight, help="the decoder refinement's detail weight")
    parser.add_argument("--clip-steps", type=int, default=d.contrastive.steps)
    parser.add_argument("--unet-steps", type=int, default=d.text_unet.steps, help="text-only UNet steps at batch %d x %d" % (d.text_unet_processes, d.text_unet.batch))
    parser.add_argument("--unet-change-weight", type=float, default=d.text_unet.losses.change_weight,
                        help="the change weight in the text-only stage (denoising.change_weights; 0: plain loss; default %(default)g)")
    parser.add_argument("--finetune-steps", type=int, default=d.finetune.steps, help="fine-tuning steps per fuser at batch %d" % d.finetune.batch)
    parser.add_argument("--style-weight", nargs="+", default=[], metavar="[FUSER=]W",
                        help="weight of the paper's style-consistency term: W for every image-conditioned fuser, FUSER=W for one "
                             "(the baseline trains without it; defaults: " + ", ".join(f"{k}={w:g}" for k, w in d.finetune.style_weights.items()) + ")")
    parser.add_argument("--change-weight", type=float, default=d.finetune.losses.change_weight, help="fine-tuning: how much more the denoising loss counts where a frame differs from the one before (0: plain loss; default %(default)g)")
    parser.add_argument("--style-on-unchanged", action=argparse.BooleanOptionalAction, default=d.finetune.losses.style_on_unchanged,
                        help="the style term counts only the latent pixels a step leaves unchanged (denoising.unchanged_mask; on by default, docs/experiments.md)")
    parser.add_argument("--eval-recipes", type=int, default=d.eval_recipes, help="test recipes to score (default: the whole test split, 64)")
    parser.add_argument("--skip-to", choices=("encode", "unet", "finetune", "decoder", "export"), default=None, help="reuse earlier stages' files in --runs")
    parser.add_argument("--stop-after", choices=("first", "encode", "unet", "finetune", "decoder"), default=None,
                        help="stop once this stage's files are in --runs (the text-only UNet is what experiments fine-tune from)")
    args = parser.parse_args(argv)
    try:
        style_weights = style_weights_from(args.style_weight, d.finetune.style_weights)
    except ValueError as error:
        parser.error(str(error))
    config = replace(
        d,
        recipes=args.recipes,
        eval_recipes=args.eval_recipes,
        autoencoder=replace(d.autoencoder, steps=args.vae_steps, detail_weight=args.vae_detail_weight, kl_weight=args.vae_kl_weight),
        contrastive=replace(d.contrastive, steps=args.clip_steps),
        text_unet=replace(d.text_unet, steps=args.unet_steps, losses=replace(d.text_unet.losses, change_weight=args.unet_change_weight)),
        finetune=replace(d.finetune, steps=args.finetune_steps, style_weights=style_weights,
                         losses=replace(d.finetune.losses, change_weight=args.change_weight, style_on_unchanged=args.style_on_unchanged)),
        decoder=replace(d.decoder, steps=args.decoder_steps, detail_weight=args.decoder_detail_weight),
    )
    return config, args


def main(argv: list[str] | None = None) -> int:
    config, args = parse_config(argv)
    from .pipeline.finish import RunPaths

    paths = RunPaths(runs=args.runs, out=args.out, contact_sheet=args.contact_sheet or args.out / "contact-sheet.png")
    paths.runs.mkdir(parents=True, exist_ok=True)
    log = file_log(paths.runs / "train_all.log")
    order = ["first", "encode", "unet", "finetune", "decoder", "export"]
    skip = order.index(args.skip_to) if args.skip_to else 0
    # Stage timings persist in --runs, so that a resumed run still reports the wall time of every stage behind its files.
    timings_file = paths.runs / "timings.json"
    timings: dict[str, float] = json.loads(timings_file.read_text()) if skip and timings_file.exists() else {}
    ctx = mp.get_context("spawn")
    # SIGTERM (kill's default) then unwinds like Ctrl-C: the pools' `with` blocks terminate their workers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # Workers run one thread each; OpenBLAS's own pool would otherwise spin on the other core.
    for var in THREAD_VARIABLES:
        os.environ[var] = "1"

    stop = order.index(args.stop_after) if args.stop_after else len(order)

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
        timed("autoencoder || clip", lambda: in_pair([("vae", paths.runs, config), ("clip", paths.runs, config)]))
    if stop == 0:
        return 0
    torch.set_num_threads(2)
    from .pipeline.checkpoints import first_stage_checkpoints, shared_models
    from .pipeline.data import load_split
    from .pipeline.encode import encode_all
    from .pipeline.finish import finish

    cfg = default_stack("baseline")
    vae_ckpt, clip_ckpt = first_stage_checkpoints(paths.runs)
    if skip <= 1:
        te, ie, vae = shared_models(cfg, vae_ckpt, clip_ckpt)
        data = load_split("train", config.world_seed, limit=config.recipes)
        timed("encode", lambda: torch.save(encode_all(vae, vae_ckpt["scaling"], te, ie, data), paths.runs / "encoded.pt"))
    if stop == 1:
        return 0
    if skip <= 2:
        (paths.runs / "unet.rendezvous").unlink(missing_ok=True)
        # One model, two processes of one thread each, gradients averaged (pipeline/data_parallel.py): batch 2 x 32.
        timed("text-only unet", lambda: in_pair([(f"unet:{rank}", paths.runs, config) for rank in range(config.text_unet_processes)]))
    if stop == 2:
        return 0
    if skip <= 3:
        timed("fine-tune six fusers", lambda: in_pair([(f"finetune:{k}", paths.runs, config) for k in FUSER_KINDS]))
    if stop == 3:
        return 0
    if skip <= 4:
        timed("decoder", lambda: _refine_decoder(paths.runs, config, log))
        vae_ckpt, clip_ckpt = first_stage_checkpoints(paths.runs)
    if stop == 4:
        return 0
    with _pool(ctx) as pool:
        finish(config, paths, cfg, vae_ckpt, clip_ckpt, timings, log, pool)
    return 0


if __name__ == "__main__":
    sys.exit(main())
