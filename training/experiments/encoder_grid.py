"""Which image and text encoders serve the best fuser best? The paper's Table 2, on the recipe world.

    cd training && /usr/bin/python3 -m experiments.encoder_grid --out /tmp/table2
    cd .. && npm run eval -- --models-dir /tmp/table2 --out /tmp/eval/table2 --settings defaults --grid

Three text encoders x three image encoders of different size and architecture: the bundles' own CLIP
transformer pair, a smaller transformer pair (half the width, one layer), and a bag of tokens with a
convolutional image encoder. Encoders train in pairs, as CLIP trains, under the pipeline's ContrastiveStage
(its seed, steps and losses); the bundles' pair is runs/clip.pt. Each of the nine (image, text) combinations
then fine-tunes the best fuser, concatenation, from the shared text-only UNet in --runs, as the paper swaps
encoders under one pretrained SD UNet: FinetuneStage's seed, batch and style weight, at --steps (3000, three
quarters of the pipeline's 4000, so the grid fits about an hour on two cores). Two single-threaded processes run
side by side; the bundles' own pair goes last, so the other core is free for `stepframe eval` while it trains.

Every stage keeps its result in RUNS/encoder_grid and is skipped when that file exists, so an interrupted
run resumes. Writes a models folder of nine bundles named concatenation__IMAGE__TEXT, each on its own
encoders (shared folder shared__IMAGE__TEXT) and with provenance.encoders = {image, text}, which
`stepframe eval --grid` lays out as the table.
"""
from __future__ import annotations

from stepframe_train.pipeline import threads  # noqa: F401  (before torch: one thread per process)

import argparse
import multiprocessing as mp
import time
from dataclasses import replace
from pathlib import Path

import torch

from stepframe_train.bundle import write_bundles
from stepframe_train.config import ImageEncoderConfig, StackConfig, TextEncoderConfig, default_stack
from stepframe_train.export import DEFAULT_TOKENIZER, REPO, world_token_map
from stepframe_train.models.encoders import build_image_encoder, build_text_encoder
from stepframe_train.pipeline.checkpoints import bundle_spec, first_stage_checkpoints, shared_models, trained_config
from stepframe_train.pipeline.contrastive import train_clip
from stepframe_train.pipeline.data import load_split
from stepframe_train.pipeline.encode import encode_conditioning
from stepframe_train.pipeline.finetune import finetune_from_text
from stepframe_train.pipeline.settings import TrainingConfig
from stepframe_train.stack import Stack, parameter_count

FUSER = "concatenation"
TEXT_ENCODERS = {
    "transformer_w64_l2": TextEncoderConfig(),
    "transformer_w32_l1": TextEncoderConfig(width=32, layers=1, heads=2),
    "bag_w64": TextEncoderConfig(kind="bag", layers=2),
}
IMAGE_ENCODERS = {
    "vit_w64_l2": ImageEncoderConfig(),
    "vit_w32_l1": ImageEncoderConfig(width=32, layers=1, heads=2),
    "conv_w64": ImageEncoderConfig(kind="conv", layers=1),
}
# (text, image) trained together; the first pair is the bundles' own, already in runs/clip.pt.
CONTRASTIVE_PAIRS = (("transformer_w64_l2", "vit_w64_l2"), ("transformer_w32_l1", "vit_w32_l1"), ("bag_w64", "conv_w64"))
DEFAULT_STEPS = 3000


def _pair_file(runs: Path, text: str, image: str) -> Path:
    if (text, image) == CONTRASTIVE_PAIRS[0]:
        return runs / "clip.pt"
    return runs / "encoder_grid" / f"clip__{text}__{image}.pt"


def _finetune_file(runs: Path, image: str, text: str, steps: int) -> Path:
    # The steps are in the name, so that a run at other --steps trains afresh instead of resuming from these.
    return runs / "encoder_grid" / f"finetune__{image}__{text}__{steps}.pt"


def _stack_config(vae_ckpt: dict, image: str, text: str) -> StackConfig:
    return replace(trained_config(default_stack(FUSER), vae_ckpt), text=TEXT_ENCODERS[text], image=IMAGE_ENCODERS[image])


def _pair_checkpoint(runs: Path, image: str, text: str) -> dict:
    """A CLIP checkpoint for the pair (what `shared_models` reads): each encoder from the contrastive run that trained it."""
    text_ckpt = torch.load(_pair_file(runs, text, next(i for t, i in CONTRASTIVE_PAIRS if t == text)))
    if (text, image) in CONTRASTIVE_PAIRS:
        image_ckpt = text_ckpt
    else:
        image_ckpt = torch.load(_pair_file(runs, next(t for t, i in CONTRASTIVE_PAIRS if i == image), image))
    return {"text_encoder": text_ckpt["text_encoder"], "token_map": text_ckpt["token_map"], "image_encoder": image_ckpt["image_encoder"]}


def _log(name: str):
    return lambda message: print(f"[{name}] {message}", flush=True)


def _train_pair(job: tuple[Path, str, str]) -> Path:
    runs, text, image = job
    torch.set_num_threads(1)
    config = TrainingConfig()
    cfg = replace(default_stack(FUSER), text=TEXT_ENCODERS[text], image=IMAGE_ENCODERS[image])
    data = load_split("train", config.world_seed, limit=config.recipes)
    token_map = world_token_map(DEFAULT_TOKENIZER, cfg.text.embedding_rows)
    te, ie, losses = train_clip(cfg, data, token_map, config.contrastive, _log(f"{text} + {image}"))
    path = _pair_file(runs, text, image)
    torch.save({"text_encoder": te.state_dict(), "image_encoder": ie.state_dict(), "token_map": token_map, "losses": losses}, path)
    return path


def _fine_tune(job: tuple[Path, str, str, int]) -> Path:
    runs, image, text, steps = job
    torch.set_num_threads(1)
    config = TrainingConfig()
    vae_ckpt, _ = first_stage_checkpoints(runs)
    cfg = _stack_config(vae_ckpt, image, text)
    data = load_split("train", config.world_seed, limit=config.recipes)
    te, ie, _ = shared_models(cfg, vae_ckpt, _pair_checkpoint(runs, image, text))
    # Latents come from the shared autoencoder, so the pipeline's cache serves every pair; the conditioning is this pair's.
    encoded = {"latents": torch.load(runs / "encoded.pt")["latents"], **encode_conditioning(te, ie, data)}
    stage = replace(config.finetune, steps=steps)
    unet, fuser, losses = finetune_from_text(cfg, data, encoded, torch.load(runs / "unet_text.pt")["unet"], FUSER, stage,
                                             _log(f"{image} x {text}"))
    path = _finetune_file(runs, image, text, steps)
    torch.save({"unet": unet.state_dict(), "fuser": fuser.state_dict(), "losses": losses}, path)
    return path


def _run(jobs: list, fn) -> None:
    if jobs:
        with mp.get_context("spawn").Pool(min(2, len(jobs))) as pool:
            pool.map(fn, jobs, chunksize=1)


def _export(runs: Path, out: Path, steps: int) -> list[Path]:
    vae_ckpt, _ = first_stage_checkpoints(runs)
    written = []
    for image in IMAGE_ENCODERS:
        for text in TEXT_ENCODERS:
            cfg = _stack_config(vae_ckpt, image, text)
            spec = bundle_spec(cfg, runs, FUSER, _finetune_file(runs, image, text, steps))
            spec = replace(spec, name=f"{FUSER}__{image}__{text}", provenance={**spec.provenance, "encoders": {"image": image, "text": text}})
            te, ie, vae = shared_models(cfg, vae_ckpt, _pair_checkpoint(runs, image, text))
            stack = Stack(config=cfg, text_encoder=te, image_encoder=ie, vae=vae, unet=spec.unet, fuser=spec.fuser)
            written += write_bundles(out, stack, [spec], DEFAULT_TOKENIZER, {"created_by": "experiments.encoder_grid", "steps": steps},
                                     shared_name=f"shared__{image}__{text}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=REPO / "training" / "runs", help="train_all's runs (--stop-after unet is enough)")
    parser.add_argument("--out", type=Path, required=True, help="a models folder for the grid's nine bundles")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"fine-tuning steps per pair (default {DEFAULT_STEPS})")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, not {args.steps}")
    missing = [name for name in ("vae.pt", "clip.pt", "encoded.pt", "unet_text.pt") if not (args.runs / name).exists()]
    if missing:
        parser.error(f"{args.runs} lacks {', '.join(missing)}: run `python -m stepframe_train.train_all --runs {args.runs} --stop-after unet` first")
    (args.runs / "encoder_grid").mkdir(parents=True, exist_ok=True)
    started = time.time()
    _run([(args.runs, t, i) for t, i in CONTRASTIVE_PAIRS[1:] if not _pair_file(args.runs, t, i).exists()], _train_pair)
    print(f"encoders ready ({time.time() - started:.0f}s)", flush=True)
    for text, image in CONTRASTIVE_PAIRS:
        losses = torch.load(_pair_file(args.runs, text, image))["losses"]
        sizes = f"{parameter_count(build_text_encoder(TEXT_ENCODERS[text]))} + {parameter_count(build_image_encoder(IMAGE_ENCODERS[image]))} parameters"
        print(f"  {text} + {image}: {sizes}; contrastive text-image {losses['contrastive']:.3f}, same-recipe {losses['same_recipe']:.3f}", flush=True)
    own = (CONTRASTIVE_PAIRS[0][1], CONTRASTIVE_PAIRS[0][0])
    pairs = sorted(((i, t) for i in IMAGE_ENCODERS for t in TEXT_ENCODERS), key=lambda pair: pair == own)
    _run([(args.runs, i, t, args.steps) for i, t in pairs if not _finetune_file(args.runs, i, t, args.steps).exists()], _fine_tune)
    print(f"fine-tuning done ({time.time() - started:.0f}s)", flush=True)
    written = _export(args.runs, args.out, args.steps)
    print(f"wrote {len(written)} bundles to {args.out} ({time.time() - started:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
