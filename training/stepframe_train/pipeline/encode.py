"""Stage 2: the frozen encoders run once over the training set, so the UNet stages never run them again."""
from __future__ import annotations

import torch
from torch import nn

from ..config import CLIP_BOS_ID, CLIP_EOS_ID, TEXT_MAX_LENGTH
from ..models.vae import AutoencoderKL
from .data import WorldTensors, to_clip, to_unit


@torch.no_grad()
def encode_frames(image_encoder: nn.Module, frames: torch.Tensor, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen image encoder over uint8 frames in batches: (hidden states, pooled embeddings)."""
    hidden, pooled = zip(*[image_encoder(to_clip(frames[i : i + batch])) for i in range(0, len(frames), batch)])
    return torch.cat(hidden), torch.cat(pooled)


@torch.no_grad()
def encode_conditioning(text_encoder: nn.Module, image_encoder: nn.Module, data: WorldTensors) -> dict:
    """What the fusers read: text encodings per unique text (and of the empty prompt), image encodings per frame."""
    th, tp = text_encoder(data.text_ids)
    empty_h, empty_p = text_encoder(data.text_ids.new_tensor([[CLIP_BOS_ID] + [CLIP_EOS_ID] * (TEXT_MAX_LENGTH - 1)]))
    ih, ip = encode_frames(image_encoder, data.frames)
    return {"text_hidden": th, "text_pooled": tp, "empty_hidden": empty_h, "empty_pooled": empty_p, "image_hidden": ih, "image_pooled": ip}


@torch.no_grad()
def encode_all(vae: AutoencoderKL, scaling: float, text_encoder: nn.Module, image_encoder: nn.Module, data: WorldTensors) -> dict:
    """Frozen encoders run once: latents, and the conditioning `encode_conditioning` gives."""
    latents = torch.cat([vae.encode(to_unit(data.frames[i : i + 256]))[0] for i in range(0, len(data.frames), 256)]) * scaling
    return {"latents": latents, **encode_conditioning(text_encoder, image_encoder, data)}
