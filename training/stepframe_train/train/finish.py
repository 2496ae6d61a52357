"""Last stage of train_all: export the bundles, evaluate them, draw the contact sheet, write the reports."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..bundle import DEFAULTS, BundleSpec, trained_defaults, write_bundles
from ..clip_tokenizer import ClipTokenizer
from ..config import default_stack
from ..export import DEFAULT_TOKENIZER, REPO
from ..models.fusers import FUSER_KINDS
from ..models.image_encoder import ImageEncoder
from ..models.text_encoder import TextEncoder
from ..models.unet import UNet
from ..models.vae import AutoencoderKL
from ..reference_sampler import ReferenceSampler, SamplerSettings
from ..stack import Stack, build_fuser_for
from ..world.export_test_split import export_test_split
from ..world.recipes import split
from ..world.render import render_recipe
from .evaluate import evaluate

def trained_config(cfg, vae_ckpt):
    return type(cfg).from_dict({**cfg.to_dict(), "vae": {**cfg.to_dict()["vae"], "scaling_factor": vae_ckpt["scaling"]}})


def first_stage_checkpoints(runs: Path) -> tuple[dict, dict]:
    """(autoencoder, CLIP) checkpoints of the first stage; the autoencoder's decoder is the refined one
    (runs/decoder.pt, train_all's decoder stage) where that exists."""
    vae_ckpt = torch.load(runs / "vae.pt")
    if (runs / "decoder.pt").exists():
        refined = torch.load(runs / "decoder.pt")
        if refined["refined_from"] != vae_ckpt["losses"]:
            raise ValueError(f"{runs / 'decoder.pt'} was refined from another vae.pt than {runs / 'vae.pt'}: "
                             "rerun train_all --skip-to decoder, or delete decoder.pt to use the jointly trained decoder")
        vae_ckpt = {**vae_ckpt, "vae": {**vae_ckpt["vae"], **{f"decoder.{k}": v for k, v in refined["decoder"].items()}},
                    "decoder_losses": refined["losses"]}
    return vae_ckpt, torch.load(runs / "clip.pt")


def refined_decoder_checkpoint(vae, losses: dict, vae_ckpt: dict) -> dict:
    """What runs/decoder.pt holds: the refined decoder, its losses, and the losses of the vae.pt it was refined from,
    which `first_stage_checkpoints` checks."""
    return {"decoder": vae.decoder.state_dict(), "losses": losses, "refined_from": vae_ckpt["losses"]}


def shared_models(cfg, vae_ckpt: dict, clip_ckpt: dict) -> tuple:
    """(text encoder, image encoder, autoencoder) from the first stage's checkpoints."""
    te, ie, vae = TextEncoder(cfg.text, clip_ckpt["token_map"]), ImageEncoder(cfg.image), AutoencoderKL(cfg.vae)
    te.load_state_dict(clip_ckpt["text_encoder"])
    ie.load_state_dict(clip_ckpt["image_encoder"])
    vae.load_state_dict(vae_ckpt["vae"])
    return te.eval(), ie.eval(), vae.eval()


def bundle_spec(cfg, runs: Path, kind: str, checkpoint: Path | None = None) -> BundleSpec:
    """One bundle's UNet and fuser from runs/finetune_<kind>.pt, or from `checkpoint` (a trial's --save) instead."""
    ckpt = torch.load(checkpoint or runs / f"finetune_{kind}.pt")
    kind_cfg = type(cfg).from_dict({**cfg.to_dict(), "fuser": {**cfg.to_dict()["fuser"], "kind": kind}})
    unet, fuser = UNet(kind_cfg.unet), build_fuser_for(kind_cfg)
    unet.load_state_dict(ckpt["unet"])
    fuser.load_state_dict(ckpt["fuser"])
    return BundleSpec(name=kind, fuser_kind=kind, unet=unet.eval(), fuser=fuser.eval(), image_guidance=kind != "baseline", defaults=trained_defaults(kind),
                      provenance={"weights": "trained", "recipe_world_seed": 0, "finetune_losses": ckpt["losses"]})


def sampler_settings(spec: BundleSpec) -> SamplerSettings:
    """The bundle's own defaults, as the server would apply them."""
    d = spec.defaults
    return SamplerSettings(num_inference_steps=d["num_inference_steps"], guidance_scale=d["guidance_scale"], scheduler=d["scheduler"],
                           image_guidance_scale=d["image_guidance_scale"] if spec.image_guidance else None, seed=1)


def sampler_over(cfg, spec: BundleSpec, runs: Path) -> tuple[ReferenceSampler, AutoencoderKL]:
    """The reference sampler over `spec`'s UNet and fuser on the first stage's encoders and autoencoder in `runs`."""
    te, ie, vae = shared_models(cfg, *first_stage_checkpoints(runs))
    shared = Stack(config=cfg, text_encoder=te, image_encoder=ie, vae=vae, unet=spec.unet, fuser=spec.fuser)
    return ReferenceSampler(shared, spec, ClipTokenizer.load(DEFAULT_TOKENIZER), image_guidance=spec.image_guidance), vae


def trained_sampler(cfg, runs: Path, kind: str, checkpoint: Path | None = None) -> tuple[ReferenceSampler, BundleSpec, AutoencoderKL]:
    """The reference sampler over one trained bundle's checkpoints in `runs` (its UNet and fuser from `checkpoint`
    where given), with its spec and the autoencoder."""
    spec = bundle_spec(cfg, runs, kind, checkpoint)
    sampler, vae = sampler_over(cfg, spec, runs)
    return sampler, spec, vae


def evaluate_bundle(job: tuple) -> tuple[dict, dict]:
    """One bundle on the test recipes, in a worker process with one thread (two run side by side)."""
    kind, runs, cfg_dict, eval_recipes = job
    torch.set_num_threads(1)
    sampler, spec, vae = trained_sampler(type(default_stack("baseline")).from_dict(cfg_dict), runs, kind)
    with torch.no_grad():
        return evaluate({kind: sampler}, vae, split("test")[:eval_recipes], {kind: sampler_settings(spec)})


def finish(args, options: dict, cfg, vae_ckpt, clip_ckpt, timings: dict, log, pool) -> None:
    t0 = time.time()
    cfg = trained_config(cfg, vae_ckpt)
    te, ie, vae = shared_models(cfg, vae_ckpt, clip_ckpt)
    specs = [bundle_spec(cfg, args.runs, kind) for kind in FUSER_KINDS]
    losses = {"autoencoder": vae_ckpt["losses"]}
    if "decoder_losses" in vae_ckpt:
        losses["refined_decoder"] = vae_ckpt["decoder_losses"]
    losses.update({"clip": clip_ckpt["losses"], "text_only_unet": torch.load(args.runs / "unet_text.pt")["losses"]})
    losses.update({s.name: s.provenance["finetune_losses"] for s in specs})
    shared = Stack(config=cfg, text_encoder=te, image_encoder=ie, vae=vae, unet=specs[0].unet, fuser=specs[0].fuser)
    written = write_bundles(args.out, shared, specs, DEFAULT_TOKENIZER, {"created_by": "stepframe_train.train_all", "options": options})
    log(f"exported {len(written)} bundles to {args.out}")
    export_test_split(REPO / "training" / "world_test")

    results = pool.map(evaluate_bundle, [(kind, args.runs, cfg.to_dict(), args.eval_recipes) for kind in FUSER_KINDS])
    metrics = {kind: r[0][kind] for kind, r in zip(FUSER_KINDS, results)}
    metrics.update({name: v for name, v in results[0][0].items() if name not in FUSER_KINDS})  # the reference rows
    generated = {kind: r[1][kind] for kind, r in zip(FUSER_KINDS, results)}
    timings["export + evaluate"] = round(time.time() - t0, 1)
    wall = sum(timings.values())
    log(json.dumps(metrics, indent=1))
    recipes = split("test")[: args.eval_recipes]
    sheet = contact_sheet(recipes[:4], generated)
    sheet.save(REPO / "docs" / "contact-sheet-trained.png")
    report = {"wall_seconds": round(wall), "timings": timings, "losses": losses, "metrics": metrics, "eval_recipes": len(recipes),
              "scaling_factor": vae_ckpt["scaling"], "sampling": {spec.name: spec.defaults for spec in specs},
              "style_weights": options["style_weights"]}
    (args.out / "training-report.json").write_text(json.dumps(report, indent=1) + "\n")
    write_models_readme(args.out / "README.md", report)
    log(f"done in {wall / 60:.1f} min")


def contact_sheet(recipes, generated: dict) -> Image.Image:
    """Per recipe: the reference row, then one row per fuser; every row starts from the reference's first frame."""
    tile, label_w = 64, 118
    rows: list[tuple[str, list[np.ndarray]]] = []
    for recipe in recipes:
        reference = render_recipe(recipe)
        rows.append((f"#{recipe.recipe_id} reference", list(reference)))
        for name in generated:
            rows.append((f"  {name}", [reference[0], *generated[name][recipe.recipe_id]]))
        rows.append(("", []))
    width = label_w + 8 * tile
    sheet = Image.new("RGB", (width, len(rows) * (tile + 2)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, frames) in enumerate(rows):
        y = r * (tile + 2)
        draw.text((4, y + tile // 2 - 6), label, fill=(20, 20, 20))
        for c, frame in enumerate(frames):
            sheet.paste(Image.fromarray(frame), (label_w + c * tile, y))
    return sheet.resize((sheet.width * 2, sheet.height * 2), Image.NEAREST)


def write_models_readme(path: Path, report: dict) -> None:
    m = report["metrics"]
    lines = [
        "# Trained bundles",
        "",
        "Six bundles (one per fuser of the paper) trained on the synthetic recipe world, sharing one text encoder,",
        "image encoder and autoencoder (in `shared/`); each has its own fine-tuned UNet and fuser.",
        "",
        "Retrain everything from scratch (CPU, 2 cores):",
        "",
        "```",
        "cd training && /usr/bin/python3 -m stepframe_train.train_all --out ../models",
        "```",
        "",
        f"Wall time on 2 CPU cores, summed over the stages that produced these files: **{report['wall_seconds'] / 60:.0f} min** ({', '.join(f'{k} {v / 60:.1f} min' for k, v in report['timings'].items())}).",
        "Seeds: recipe world 0; autoencoder 11, CLIP 12, text-only UNet 13, fine-tuning 14, decoder 15 (`STAGE_SEEDS` in train_all.py); sampling seed 1.",
        f"VAE scaling factor (1/std of the latents): {report['scaling_factor']:.4f}.",
        "Fine-tuning's style-term weight per fuser (`--style-weight`; the baseline trains without the term): "
        + ", ".join(f"{k} {w:g}" for k, w in report["style_weights"].items()) + ".",
        "",
        "## Final losses (exponential moving averages at the last step)",
        "",
        "| stage | losses |",
        "| --- | --- |",
        *[f"| {k} | {', '.join(f'{n} {v:.4f}' for n, v in l.items())} |" for k, l in report["losses"].items()],
        "",
        f"## Quality on the test split ({report['eval_recipes']} recipes)",
        "",
        f"Autoencoder round trip on the held-out val split: **{report['losses'].get('refined_decoder', report['losses']['autoencoder'])['val_psnr']:.2f} dB** PSNR"
        + (f" (the jointly trained decoder, before the decoder stage: {report['losses']['autoencoder']['val_psnr']:.2f} dB)." if "refined_decoder" in report["losses"] else "."),
        "",
        f"Reference sampler (training/stepframe_train/reference_sampler.py) at each bundle's defaults: {DEFAULTS['num_inference_steps']} "
        f"{DEFAULTS['scheduler'].upper()} steps, text guidance {DEFAULTS['guidance_scale']:g};",
        f"the image-conditioned bundles add three-row guidance with image guidance {DEFAULTS['image_guidance_scale']:g} (InstructPix2Pix)"
        + "".join(f", {name} at {d['image_guidance_scale']:g}" for name, d in report["sampling"].items()
                  if d["image_guidance_scale"] != DEFAULTS["image_guidance_scale"])
        + "; the baseline uses two rows.",
        "Each sequence starts from the reference's first frame and generates the remaining steps, each conditioned on the",
        "previous generated frame. Text probe: the step's new ingredient colour covers at least half as many pixels of its",
        "region as in the autoencoder's reconstruction of the reference (and at least 6); the second column counts only the",
        "steps where the reconstruction itself passes. Style error: mean colour distance of table and vessel rim to the",
        "reference frame (RGB 0-255, lower is better).",
        "",
        "| row | text probe pass | on steps the reconstruction passes | style error | PSNR (dB) | frames |",
        "| --- | --- | --- | --- | --- | --- |",
        *[f"| {name} | {v['text_probe_pass'] * 100:.1f}% ({v['probed_steps']} steps) | {v['text_probe_pass_showable'] * 100:.1f}% ({v['showable_steps']} steps) "
          f"| {v['style_error']:.1f} | {v['psnr']:.2f} | {v['frames']} |" for name, v in m.items()],
        "",
        "The contact sheet is docs/contact-sheet-trained.png: four test recipes, the reference row, then every bundle's sequence.",
    ]
    path.write_text("\n".join(lines) + "\n")
