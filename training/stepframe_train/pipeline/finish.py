"""Last stage of train_all: export the bundles, evaluate them, draw the contact sheet, write the reports."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..bundle import write_bundles
from ..config import StackConfig
from ..export import DEFAULT_TOKENIZER
from ..models.fusers import FUSER_KINDS
from ..stack import Stack
from ..world.recipes import split
from .checkpoints import bundle_spec, sampler_settings, shared_models, trained_config, trained_sampler
from .evaluate import evaluate
from .log import Log
from .report import contact_sheet, write_models_readme
from .settings import TrainingConfig


@dataclass(frozen=True)
class RunPaths:
    """Where train_all reads and writes: `runs` (checkpoints), `out` (the bundles, training-report.json, README.md)
    and `contact_sheet` (a PNG). Nothing else is written."""

    runs: Path
    out: Path
    contact_sheet: Path


def evaluate_bundle(job: tuple) -> tuple[dict, dict]:
    """One bundle on the test recipes, in a worker process with one thread (two run side by side)."""
    kind, runs, cfg_dict, config = job
    torch.set_num_threads(1)
    sampler, spec, vae = trained_sampler(StackConfig.from_dict(cfg_dict), runs, kind)
    with torch.no_grad():
        return evaluate({kind: sampler}, vae, split("test", config.world_seed)[: config.eval_recipes], {kind: sampler_settings(spec, config.sampling_seed)})


def finish(config: TrainingConfig, paths: RunPaths, cfg: StackConfig, vae_ckpt: dict, clip_ckpt: dict, timings: dict, log: Log, pool) -> None:
    t0 = time.time()
    cfg = trained_config(cfg, vae_ckpt)
    te, ie, vae = shared_models(cfg, vae_ckpt, clip_ckpt)
    specs = [bundle_spec(cfg, paths.runs, kind) for kind in FUSER_KINDS]
    losses = {"autoencoder": vae_ckpt["losses"]}
    if "decoder_losses" in vae_ckpt:
        losses["refined_decoder"] = vae_ckpt["decoder_losses"]
    losses.update({"clip": clip_ckpt["losses"], "text_only_unet": torch.load(paths.runs / "unet_text.pt")["losses"]})
    losses.update({s.name: s.provenance["finetune_losses"] for s in specs})
    shared = Stack(config=cfg, text_encoder=te, image_encoder=ie, vae=vae, unet=specs[0].unet, fuser=specs[0].fuser)
    written = write_bundles(paths.out, shared, specs, DEFAULT_TOKENIZER, {"created_by": "stepframe_train.train_all", "options": config.to_dict()})
    log(f"exported {len(written)} bundles to {paths.out}")

    results = pool.map(evaluate_bundle, [(kind, paths.runs, cfg.to_dict(), config) for kind in FUSER_KINDS])
    metrics = {kind: r[0][kind] for kind, r in zip(FUSER_KINDS, results)}
    metrics.update({name: v for name, v in results[0][0].items() if name not in FUSER_KINDS})  # the reference rows
    generated = {kind: r[1][kind] for kind, r in zip(FUSER_KINDS, results)}
    timings["export + evaluate"] = round(time.time() - t0, 1)
    wall = sum(timings.values())
    log(json.dumps(metrics, indent=1))
    recipes = split("test", config.world_seed)[: config.eval_recipes]
    paths.contact_sheet.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(recipes[:4], generated).save(paths.contact_sheet)
    report = {"wall_seconds": round(wall), "timings": timings, "losses": losses, "metrics": metrics, "eval_recipes": len(recipes),
              "scaling_factor": vae_ckpt["scaling"], "sampling": {spec.name: spec.defaults for spec in specs},
              "style_weights": config.finetune.style_weights, "seeds": stage_seeds(config)}
    (paths.out / "training-report.json").write_text(json.dumps(report, indent=1) + "\n")
    write_models_readme(paths.out / "README.md", report)
    log(f"done in {wall / 60:.1f} min")


def stage_seeds(config: TrainingConfig) -> dict[str, int]:
    """Every seed of the run, as the models README reports them."""
    return {"recipe world": config.world_seed, "autoencoder": config.autoencoder.seed, "CLIP": config.contrastive.seed,
            "text-only UNet": config.text_unet.seed, "fine-tuning": config.finetune.seed, "decoder": config.decoder.seed,
            "sampling": config.sampling_seed}
