"""Writes Stable Diffusion-shaped checkpoint folders with random weights, as the libraries lay them out:
a diffusers SD folder and a transformers CLIP vision folder. No real weights can be downloaded where
stepframe is built, so the real-size benchmarks (docs/performance.md) run on these.

    /usr/bin/python3 -m stepframe_train.sd.random_checkpoints --preset sd15 --out /tmp/sd15-random

`sd15` is SD 1.5's architecture (UNet 860M parameters, CLIP ViT-L/14 text and vision towers, the
8× VAE) with its configs as diffusers and transformers write them.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

from ..manifest import SD1_SCHEDULER_CONFIG, preprocessor_config
from .clip import ClipConfig, ClipTextModel, ClipVisionModel
from .folders import load_clip_vision, load_stable_diffusion
from .unet import UNet2DConditionModel, UNetConfig
from .vae import AutoencoderKL, VaeConfig
from .weights import write_safetensors

TOKENIZER = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "sd_reference" / "sd" / "tokenizer"

SD15 = {
    "unet": {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.26.3", "act_fn": "silu", "attention_head_dim": 8,
             "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": False, "cross_attention_dim": 768,
             "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
             "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
             "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
             "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]},
    "vae": {"_class_name": "AutoencoderKL", "_diffusers_version": "0.26.3", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
            "down_block_types": ["DownEncoderBlock2D"] * 4, "in_channels": 3, "latent_channels": 4, "layers_per_block": 2,
            "norm_num_groups": 32, "out_channels": 3, "sample_size": 512, "scaling_factor": 0.18215, "up_block_types": ["UpDecoderBlock2D"] * 4},
    "text_encoder": {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "hidden_act": "quick_gelu", "hidden_size": 768,
                     "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12, "max_position_embeddings": 77,
                     "layer_norm_eps": 1e-05, "projection_dim": 768, "vocab_size": 49408, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1},
    "clip_vision": {"architectures": ["CLIPVisionModelWithProjection"], "model_type": "clip_vision_model", "hidden_act": "quick_gelu",
                    "hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16, "num_hidden_layers": 24, "image_size": 224,
                    "patch_size": 14, "projection_dim": 768, "layer_norm_eps": 1e-05, "num_channels": 3},
}


def _config(folder: Path, config: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return folder / "config.json"


def write_random(out: Path, configs: dict, seed: int) -> tuple[Path, Path]:
    torch.manual_seed(seed)
    sd, vision = out / "sd", out / "clip-vision"
    for name, build, reader, weights in (
        ("unet", UNet2DConditionModel, UNetConfig.read, "diffusion_pytorch_model.safetensors"),
        ("vae", AutoencoderKL, VaeConfig.read, "diffusion_pytorch_model.safetensors"),
    ):
        write_safetensors(sd / name / weights, build(reader(_config(sd / name, configs[name]))).state_dict())
    text = ClipTextModel(ClipConfig.read(_config(sd / "text_encoder", configs["text_encoder"]), "text"))
    write_safetensors(sd / "text_encoder" / "model.safetensors", text.state_dict())
    tower = ClipVisionModel(ClipConfig.read(_config(vision, configs["clip_vision"]), "vision"))
    write_safetensors(vision / "model.safetensors", tower.state_dict())
    image = configs["clip_vision"]["image_size"]
    (vision / "preprocessor_config.json").write_text(json.dumps(preprocessor_config(image), indent=2) + "\n")
    shutil.copytree(TOKENIZER, sd / "tokenizer", dirs_exist_ok=True)
    (sd / "scheduler").mkdir(exist_ok=True)
    (sd / "scheduler" / "scheduler_config.json").write_text(json.dumps({**SD1_SCHEDULER_CONFIG, "_class_name": "PNDMScheduler",
                                                                        "skip_prk_steps": True}, indent=2) + "\n")
    (sd / "feature_extractor").mkdir(exist_ok=True)
    (sd / "feature_extractor" / "preprocessor_config.json").write_text(json.dumps(preprocessor_config(image), indent=2) + "\n")
    (sd / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.26.3", "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "PNDMScheduler"], "feature_extractor": ["transformers", "CLIPImageProcessor"],
        "safety_checker": [None, None], "requires_safety_checker": False}, indent=2) + "\n")
    return sd, vision


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=("sd15",), default="sd15")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    sd, vision = write_random(args.out, SD15, args.seed)
    loaded = load_stable_diffusion(sd)  # the folders load through the same code a real checkpoint does
    tower = load_clip_vision(vision)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    print(json.dumps({"unet": count(loaded.unet), "vae": count(loaded.vae), "text_encoder": count(loaded.text_encoder),
                      "image_encoder": count(tower.model), "sd": str(sd), "clip_vision": str(vision)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
