"""Stage 2: the frozen encoders run once over the training set, so the UNet stages never run them again."""
from __future__ import annotations

import torch

from ..config import CLIP_BOS_ID, CLIP_EOS_ID, TEXT_MAX_LENGTH
from ..models.image_encoder import ImageEncoder
from ..models.text_encoder import TextEncoder
from ..models.vae import AutoencoderKL
from .data import WorldTensors, to_clip, to_unit


@torch.no_grad()
def encode_frames(image_encoder: ImageEncoder, frames: torch.Tensor, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen image encoder over uint8 frames in batches: (hidden states, pooled embeddings)."""
    hidden, pooled = zip(*[image_encoder(to_clip(frames[i : i + batch])) for i in range(0, len(frames), batch)])
    return torch.cat(hidden), torch.cat(pooled)


@torch.no_grad()
def encode_all(vae: AutoencoderKL, scaling: float, text_encoder: TextEncoder, image_encoder: ImageEncoder, data: WorldTensors) -> dict:
    """Frozen encoders run once: latents, text encodings per unique text, image encodings per frame."""
    latents = torch.cat([vae.encode(to_unit(data.frames[i : i + 256]))[0] for i in range(0, len(data.frames), 256)]) * scaling
    th, tp = text_encoder(data.text_ids)
    empty_h, empty_p = text_encoder(data.text_ids.new_tensor([[CLIP_BOS_ID] + [CLIP_EOS_ID] * (TEXT_MAX_LENGTH - 1)]))
    ih, ip = encode_frames(image_encoder, data.frames)
    return {"latents": latents, "text_hidden": th, "text_pooled": tp, "empty_hidden": empty_h, "empty_pooled": empty_p,
            "image_hidden": ih, "image_pooled": ip}
