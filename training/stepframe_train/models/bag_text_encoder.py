"""A bag-of-tokens text encoder: what a text model without word order or context can tell the UNet.

Each token is embedded and refined by per-token feed-forward blocks; no position embedding and no attention
let one token see another, so the hidden state of "add" is the same in every step. The pooled output is the
mean over the real tokens (BOS through the first EOS), as fastText-style models pool. Same call and outputs as
TextEncoder, so a bundle, the fusers and the server take either.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import TextEncoderConfig
from .text_encoder import default_token_map


class _TokenBlock(nn.Module):
    """Residual pre-LN MLP on every token alone."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.norm(x))


class BagOfTokensEncoder(nn.Module):
    """input_ids [B, 77] (int64) -> last_hidden_state [B, 77, D], pooler_output [B, D]."""

    def __init__(self, cfg: TextEncoderConfig, token_map: torch.Tensor | None = None):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("token_map", (default_token_map(cfg.embedding_rows) if token_map is None else token_map).clone())
        self.token_embedding = nn.Embedding(cfg.embedding_rows, cfg.width)
        self.blocks = nn.ModuleList(_TokenBlock(cfg.width) for _ in range(cfg.layers))
        self.final_layer_norm = nn.LayerNorm(cfg.width)
        self.pool_norm = nn.LayerNorm(cfg.width)
        self.register_buffer("positions", torch.arange(cfg.max_length), persistent=False)

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.token_embedding(self.token_map[input_ids])
        for block in self.blocks:
            x = block(x)
        x = self.final_layer_norm(x)
        # The padding after the first EOS repeats EOS; counting it would weigh short steps towards EOS.
        eos_at = input_ids.argmax(dim=-1, keepdim=True)
        real = (self.positions[None, :] <= eos_at).to(x.dtype)[..., None]
        pooled = (x * real).sum(dim=1) / real.sum(dim=1)
        return x, self.pool_norm(pooled)
