"""Loading checkpoint folders: a diffusers Stable Diffusion folder and a transformers CLIP vision folder."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .clip import IGNORABLE_BUFFERS, ClipConfig, ClipTextModel, ClipVisionModel
from .config_reading import ConfigReader
from .errors import CheckpointError
from .unet import UNet2DConditionModel, UNetConfig
from .vae import AutoencoderKL, VaeConfig, rename_legacy_attention
from .weights import load_exact, read_weights

SD_SUBFOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
TOKENIZER_FILES = ("vocab.json", "merges.txt")
# A CLIPModel checkpoint holds both towers; loading its vision tower leaves these out on purpose.
CLIP_TEXT_SIDE = ("text_model.", "text_projection.", "logit_scale")


@dataclass
class StableDiffusion:
    """A diffusers SD folder, loaded: its models in eval mode and where its other parts live."""

    folder: Path
    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoder: ClipTextModel
    tokenizer_dir: Path
    scheduler_config: dict
    feature_extractor_dir: Path | None

    @property
    def image_size(self) -> int:
        return self.unet.config.sample_size * self.vae.config.downscale


@dataclass
class ClipVision:
    folder: Path
    model: ClipVisionModel
    preprocessor_config: dict


def load_unet(folder: Path) -> UNet2DConditionModel:
    model = UNet2DConditionModel(UNetConfig.read(folder / "config.json"))
    load_exact(model, read_weights(folder, "diffusion_pytorch_model"), str(folder))
    return model.eval()


def load_vae(folder: Path) -> AutoencoderKL:
    model = AutoencoderKL(VaeConfig.read(folder / "config.json"))
    load_exact(model, rename_legacy_attention(read_weights(folder, "diffusion_pytorch_model")), str(folder))
    return model.eval()


def load_text_encoder(folder: Path) -> ClipTextModel:
    model = ClipTextModel(ClipConfig.read(folder / "config.json", "text"))
    load_exact(model, read_weights(folder, "model"), str(folder), IGNORABLE_BUFFERS)
    return model.eval()


def load_stable_diffusion(folder: Path) -> StableDiffusion:
    """A diffusers folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/, feature_extractor/)."""
    folder = Path(folder)
    if not (folder / "model_index.json").exists():
        raise CheckpointError(f"{folder}: not a diffusers folder (no model_index.json)")
    index = ConfigReader(folder / "model_index.json")
    index.only("_class_name", "StableDiffusionPipeline")
    for sub in SD_SUBFOLDERS:
        if not (folder / sub).is_dir():
            raise CheckpointError(f"{folder}: missing {sub}/")
    for name in TOKENIZER_FILES:
        if not (folder / "tokenizer" / name).exists():
            raise CheckpointError(f"{folder / 'tokenizer'}: missing {name}")
    scheduler_config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    unet, vae, text = load_unet(folder / "unet"), load_vae(folder / "vae"), load_text_encoder(folder / "text_encoder")
    if text.config.hidden_size != unet.config.cross_attention_dim:
        raise CheckpointError(f"{folder}: the text encoder's width {text.config.hidden_size} is not the UNet's cross_attention_dim "
                              f"{unet.config.cross_attention_dim}")
    if vae.config.latent_channels != unet.config.in_channels:
        raise CheckpointError(f"{folder}: the VAE's {vae.config.latent_channels} latent channels are not the UNet's "
                              f"{unet.config.in_channels} input channels")
    extractor = folder / "feature_extractor"
    return StableDiffusion(folder, unet, vae, text, folder / "tokenizer", scheduler_config,
                           extractor if (extractor / "preprocessor_config.json").exists() else None)


def load_clip_vision(folder: Path) -> ClipVision:
    """A transformers CLIP vision folder (CLIPVisionModel[WithProjection]), or a whole CLIPModel folder, whose
    vision tower (and visual projection) is taken and text tower left out."""
    folder = Path(folder)
    config_path = folder / "config.json"
    data = json.loads(config_path.read_text()) if config_path.exists() else None
    if data is None:
        raise CheckpointError(f"{config_path}: missing")
    state = read_weights(folder, "model")
    if "vision_config" in data:
        config = ClipConfig.read(config_path, "vision", {"projection_dim": data.get("projection_dim", 512), **data["vision_config"]},
                                 architecture="CLIPVisionModelWithProjection")
        state = {k: v for k, v in state.items() if not k.startswith(CLIP_TEXT_SIDE)}
    else:
        config = ClipConfig.read(config_path, "vision")
    model = ClipVisionModel(config)
    load_exact(model, state, str(folder), IGNORABLE_BUFFERS)
    preprocessor = folder / "preprocessor_config.json"
    if not preprocessor.exists():
        raise CheckpointError(f"{folder}: missing preprocessor_config.json (CLIPImageProcessor's settings)")
    return ClipVision(folder, model.eval(), json.loads(preprocessor.read_text()))
