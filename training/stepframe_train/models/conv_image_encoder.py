"""A convolutional image encoder, the grid's non-transformer on the image side.

ConvNeXt's shape at miniature size: a patchify stem, residual blocks of a depthwise convolution and a
pointwise MLP, and one 2x downsampling, so the last feature map has one cell per `patch_size` square, as a
ViT has one token per patch. Its cells are the hidden states (no CLS token) and their normalised mean is the
pooled output. It is deliberately unlike the evaluation's encoder (models/evaluation_encoder.py: plain strided
convolutions down to a 2x2 grid), which must stay an outside judge.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import ImageEncoderConfig


class _ConvBlock(nn.Module):
    """Depthwise 5x5 convolution for space, then a pointwise MLP for channels, around a residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.spatial = nn.Conv2d(channels, channels, 5, padding=2, groups=channels)
        self.norm = nn.GroupNorm(1, channels)
        self.mlp = nn.Sequential(nn.Conv2d(channels, 4 * channels, 1), nn.GELU(), nn.Conv2d(4 * channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.norm(self.spatial(x)))


class ConvImageEncoder(nn.Module):
    """pixel_values [B, 3, S, S] (CLIP-normalised) -> last_hidden_state [B, (S/patch)^2, D], pooler_output [B, D]."""

    def __init__(self, cfg: ImageEncoderConfig):
        super().__init__()
        if cfg.patch_size % 2 or cfg.image_size % cfg.patch_size:
            raise ValueError(f"a conv image encoder needs an even patch size that divides the image size, not {cfg.patch_size}")
        self.cfg = cfg
        half = cfg.width // 2
        self.stem = nn.Sequential(nn.Conv2d(3, half, cfg.patch_size // 2, stride=cfg.patch_size // 2), nn.GroupNorm(1, half))
        self.early = nn.Sequential(*(_ConvBlock(half) for _ in range(cfg.layers)))
        self.downsample = nn.Sequential(nn.GroupNorm(1, half), nn.Conv2d(half, cfg.width, 2, stride=2))
        self.late = nn.Sequential(*(_ConvBlock(cfg.width) for _ in range(cfg.layers)))
        self.token_norm = nn.LayerNorm(cfg.width)
        self.pool_norm = nn.LayerNorm(cfg.width)

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        grid = self.late(self.downsample(self.early(self.stem(pixel_values))))
        tokens = self.token_norm(grid.flatten(2).transpose(1, 2))
        return tokens, self.pool_norm(tokens.mean(dim=1))
