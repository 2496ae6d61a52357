"""Loading what earlier stages wrote to the runs folder: checkpoints, the models in them, and samplers over them."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..bundle import SHARED_DIR, BundleSpec, trained_defaults, write_bundles
from ..clip_tokenizer import ClipTokenizer
from ..config import default_stack
from ..export import DEFAULT_TOKENIZER
from ..models.encoders import build_image_encoder, build_text_encoder
from ..models.unet import UNet
from ..models.vae import AutoencoderKL
from ..reference_sampler import ReferenceSampler, SamplerSettings
from ..stack import Stack, build_fuser_for, config_for_fuser


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
    te, ie, vae = build_text_encoder(cfg.text, clip_ckpt["token_map"]), build_image_encoder(cfg.image), AutoencoderKL(cfg.vae)
    te.load_state_dict(clip_ckpt["text_encoder"])
    ie.load_state_dict(clip_ckpt["image_encoder"])
    vae.load_state_dict(vae_ckpt["vae"])
    return te.eval(), ie.eval(), vae.eval()


def bundle_spec(cfg, runs: Path, kind: str, checkpoint: Path | None = None) -> BundleSpec:
    """One bundle's UNet and fuser from runs/finetune_<kind>.pt, or from `checkpoint` (a trial's --save) instead."""
    ckpt = torch.load(checkpoint or runs / f"finetune_{kind}.pt")
    kind_cfg = config_for_fuser(cfg, kind)
    unet, fuser = UNet(kind_cfg.unet), build_fuser_for(kind_cfg)
    unet.load_state_dict(ckpt["unet"])
    fuser.load_state_dict(ckpt["fuser"])
    return BundleSpec(name=kind, fuser_kind=kind, unet=unet.eval(), fuser=fuser.eval(), image_guidance=kind != "baseline", defaults=trained_defaults(kind),
                      provenance={"weights": "trained", "recipe_world_seed": 0, "finetune_losses": ckpt["losses"]})


def write_run_bundles(out: Path, runs: Path, checkpoints: list[tuple[str, Path, str]], provenance: dict,
                      shared_name: str = SHARED_DIR) -> list[Path]:
    """Bundles of fine-tuned checkpoints, each (fuser kind, checkpoint file, bundle name), on the encoders and autoencoder
    in `runs`, which go to OUT/`shared_name`; returns the bundle folders."""
    vae_ckpt, clip_ckpt = first_stage_checkpoints(runs)
    cfg = trained_config(default_stack("baseline"), vae_ckpt)
    te, ie, vae = shared_models(cfg, vae_ckpt, clip_ckpt)
    specs = [replace(bundle_spec(cfg, runs, kind, path), name=name) for kind, path, name in checkpoints]
    shared = Stack(config=cfg, text_encoder=te, image_encoder=ie, vae=vae, unet=specs[0].unet, fuser=specs[0].fuser)
    return write_bundles(out, shared, specs, DEFAULT_TOKENIZER, provenance, shared_name=shared_name)


def sampler_settings(spec: BundleSpec, seed: int = 1) -> SamplerSettings:
    """The bundle's own defaults, as the server would apply them (TrainingConfig.sampling_seed is 1)."""
    d = spec.defaults
    return SamplerSettings(num_inference_steps=d["num_inference_steps"], guidance_scale=d["guidance_scale"], scheduler=d["scheduler"],
                           image_guidance_scale=d["image_guidance_scale"] if spec.image_guidance else None, seed=seed)


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
