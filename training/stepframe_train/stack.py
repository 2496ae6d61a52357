"""Builds the whole miniature stack from a `StackConfig`."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import torch
from torch import nn

from .config import TEXT_MAX_LENGTH, StackConfig
from .models.fuser_registry import build_fuser, fuser_class
from .models.fusers import Fuser
from .models.encoders import build_image_encoder, build_text_encoder
from .models.unet import UNet
from .models.vae import AutoencoderKL


@dataclass
class Stack:
    config: StackConfig
    text_encoder: nn.Module
    image_encoder: nn.Module
    vae: AutoencoderKL
    unet: UNet
    fuser: Fuser


def build_fuser_for(cfg: StackConfig) -> Fuser:
    return build_fuser(
        cfg.fuser.kind,
        text_dim=cfg.text.width,
        text_tokens=TEXT_MAX_LENGTH,
        image_dim=cfg.image.width,
        image_tokens=cfg.image.tokens,
        out_dim=cfg.unet.cross_attention_dim,
        hidden=cfg.fuser.hidden,
    )


def config_for_fuser(cfg: StackConfig, kind: str) -> StackConfig:
    """`cfg` with fuser `kind`, and with the UNet's decoupled image attention sized to what that fuser outputs (none for
    the paper's six), so that one call makes a UNet and fuser that fit."""
    image_tokens = fuser_class(kind).decoupled_frames * cfg.image.tokens  # from the class: building one would draw random numbers
    return replace(cfg, fuser=replace(cfg.fuser, kind=kind), unet=replace(cfg.unet, image_context_tokens=image_tokens))


def build_stack(cfg: StackConfig, token_map: torch.Tensor | None = None) -> Stack:
    """Creation order is fixed, so a seed set before this call fixes every weight."""
    return Stack(
        config=cfg,
        text_encoder=build_text_encoder(cfg.text, token_map),
        image_encoder=build_image_encoder(cfg.image),
        vae=AutoencoderKL(cfg.vae),
        unet=UNet(cfg.unet),
        fuser=build_fuser_for(cfg),
    )


def weights_digest(module: nn.Module) -> str:
    """sha256 over the state dict (names, shapes and float32 values), independent of ONNX serialisation."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
