"""CLIP-style ViT image encoder: patch embedding, CLS token, pre/post layer norms."""
from __future__ import annotations

import torch
from torch import nn

from ..config import ImageEncoderConfig
from .layers import ClipEncoderLayer


class ImageEncoder(nn.Module):
    """pixel_values [B, 3, S, S] (CLIP-normalised) -> last_hidden_state [B, 1+P, D], pooler_output [B, D]."""

    def __init__(self, cfg: ImageEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.patch_embedding = nn.Conv2d(3, cfg.width, cfg.patch_size, stride=cfg.patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(cfg.width) * 0.02)
        self.position_embedding = nn.Parameter(torch.randn(cfg.tokens, cfg.width) * 0.02)
        self.pre_layrnorm = nn.LayerNorm(cfg.width)
        self.layers = nn.ModuleList(ClipEncoderLayer(cfg.width, cfg.heads) for _ in range(cfg.layers))
        self.post_layernorm = nn.LayerNorm(cfg.width)

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        patches = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(patches.shape[0], 1, -1)
        x = self.pre_layrnorm(torch.cat([cls, patches], dim=1) + self.position_embedding)
        for layer in self.layers:
            x = layer(x)
        # As in HF's CLIPVisionModel: the hidden states are not post-normed; the pooled CLS token is.
        return x, self.post_layernorm(x[:, 0])
