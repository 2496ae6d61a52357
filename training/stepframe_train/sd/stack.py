"""The paper's model on real checkpoints: SD's text encoder, UNet and VAE, a CLIP vision tower, and a fuser."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..clip_tokenizer import ClipTokenizer
from ..models.fuser_registry import build_fuser
from ..models.fusers import Fuser
from .folders import ClipVision, StableDiffusion


@dataclass(frozen=True)
class FuserShape:
    """What sizes a fuser: the encoders' real widths and token counts (ViT-L/14: 257 × 1024, pooled 768)."""

    kind: str
    text_dim: int
    text_tokens: int
    image_dim: int
    image_tokens: int
    image_pooled_dim: int
    out_dim: int
    hidden: int

    def build(self) -> Fuser:
        return build_fuser(self.kind, self.text_dim, self.text_tokens, self.image_dim, self.image_tokens, self.out_dim, self.hidden,
                           image_pooled_dim=self.image_pooled_dim)


def fuser_shape(kind: str, sd: StableDiffusion, vision: ClipVision | None) -> FuserShape:
    text = sd.text_encoder.config
    if vision is None:
        return FuserShape(kind, text.hidden_size, text.max_position_embeddings, text.hidden_size, 1, text.hidden_size,
                          sd.unet.config.cross_attention_dim, 4 * text.hidden_size)
    v = vision.model.config
    tokens = (v.image_size // v.patch_size) ** 2 + 1
    pooled = v.projection_dim if v.with_projection else v.hidden_size
    # The feed-forward width is 4× the token width, as in CLIP's and SD's own blocks.
    width = v.hidden_size if kind in ("text_pooling", "attend_to_text") else text.hidden_size
    return FuserShape(kind, text.hidden_size, text.max_position_embeddings, v.hidden_size, tokens, pooled,
                      sd.unet.config.cross_attention_dim, 4 * width)


def pad_token_id(tokenizer_dir: Path) -> int:
    """The id the tokenizer pads with: special_tokens_map.json's pad_token (SD 2.x: "!", id 0), else SD 1.x's EOS."""
    vocab = json.loads((tokenizer_dir / "vocab.json").read_text())
    special = tokenizer_dir / "special_tokens_map.json"
    pad = json.loads(special.read_text()).get("pad_token") if special.exists() else None
    if isinstance(pad, dict):
        pad = pad.get("content")
    return vocab.get(pad, 49407) if isinstance(pad, str) else 49407


def tokenize(tokenizer: ClipTokenizer, texts: list[str], pad_id: int, length: int = 77) -> torch.Tensor:
    """[B, 77] ids: BOS, text, EOS, then the tokenizer's pad id."""
    rows = []
    for text in texts:
        ids = tokenizer.encode(text)
        rows.append(ids + [pad_id] * (length - len(ids)))
    return torch.tensor(rows, dtype=torch.int64)


def pooled_image(outputs) -> torch.Tensor:
    """The vision tower's pooled embedding as the bundle exports it: image_embeds where it has a projection, else pooler_output."""
    hidden, pooler, embeds = outputs
    return embeds if embeds is not None else pooler
