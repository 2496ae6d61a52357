"""The evaluation's image encoder: a small convolutional network that no bundle uses.

Scores such as the CLIP comparison score need an image embedding. Taking it from the bundles' own image
encoder would let a generator score well by fooling the very network it is conditioned on, so the evaluation
has its own, with another architecture (convolutions, not a ViT) and its own seed, as FID uses an Inception
network that no generator sees.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class EvaluationImageEncoder(nn.Module):
    """pixel_values [B, 3, 64, 64] (CLIP-normalised) -> (None, pooled [B, width]), the call shape train_clip expects."""

    def __init__(self, channels: tuple[int, ...] = (32, 48, 64, 96, 128), width: int = 128, groups: int = 8):
        super().__init__()
        # A strided stem, as ResNets have: full-resolution convolutions made a training step 4.7x slower on CPU.
        layers: list[nn.Module] = [nn.Conv2d(3, channels[0], 3, stride=2, padding=1)]
        for c_in, c_out in zip(channels, channels[1:]):
            # Each stage halves the resolution again: 32 -> 16 -> 8 -> 4 -> 2.
            layers += [nn.GroupNorm(groups, c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)]
        layers += [nn.GroupNorm(groups, channels[-1]), nn.SiLU()]
        self.features = nn.Sequential(*layers)
        # The last 2x2 grid is kept whole: where things are (the board on the right, the vessel in the middle) is part
        # of what a frame shows, and a global average would throw it away.
        self.head = nn.Linear(channels[-1] * 4, width)
        self.width = width

    def forward(self, pixel_values: torch.Tensor) -> tuple[None, torch.Tensor]:
        grid = F.adaptive_avg_pool2d(self.features(pixel_values), 2).flatten(1)
        return None, self.head(grid)


class EvaluationEmbedding(nn.Module):
    """What the evaluation compares: the content projection (trained against the step text) and the style projection
    (trained against other frames of the same recipe), each unit-normalised, concatenated and scaled to unit length,
    so that cosine similarity weighs content and style alike."""

    def __init__(self, encoder: EvaluationImageEncoder, content: nn.Linear, style: nn.Linear):
        super().__init__()
        self.encoder, self.content, self.style = encoder, content, style

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        _, pooled = self.encoder(pixel_values)
        both = torch.cat([F.normalize(self.content(pooled), dim=-1), F.normalize(self.style(pooled), dim=-1)], dim=-1)
        return both / 2**0.5
