"""CLIP-style text transformer: causal self-attention, final layer norm, pooling at the EOS token."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..config import CLIP_BOS_ID, CLIP_EOS_ID, CLIP_VOCAB_SIZE, TextEncoderConfig
from .layers import ClipEncoderLayer


def compact_token_map(known_ids: Sequence[int], rows: int) -> torch.Tensor:
    """Map every CLIP id to a row of a small embedding table.

    The world's vocabulary uses a few hundred of CLIP's 49,408 tokens; a full table would dominate the
    bundle size. Row 0 is the shared "unknown token" row, rows 1 and 2 are BOS and EOS, then the
    known ids in order. The map lives inside the ONNX graph, so the model still takes real CLIP ids.
    """
    ordered = [i for i in dict.fromkeys(known_ids) if i not in (CLIP_BOS_ID, CLIP_EOS_ID)]
    if len(ordered) + 3 > rows:
        raise ValueError(f"{len(ordered)} known tokens do not fit an embedding table of {rows} rows")
    mapping = torch.zeros(CLIP_VOCAB_SIZE, dtype=torch.int64)
    mapping[CLIP_BOS_ID] = 1
    mapping[CLIP_EOS_ID] = 2
    for row, token_id in enumerate(ordered, start=3):
        mapping[token_id] = row
    return mapping


def default_token_map(rows: int) -> torch.Tensor:
    """Without the world's vocabulary (random-weight fixtures): every CLIP id folded onto the table's rows."""
    return torch.arange(CLIP_VOCAB_SIZE, dtype=torch.int64) % rows


class TextEncoder(nn.Module):
    """input_ids [B, 77] (int64) -> last_hidden_state [B, 77, D], pooler_output [B, D]."""

    def __init__(self, cfg: TextEncoderConfig, token_map: torch.Tensor | None = None):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("token_map", (default_token_map(cfg.embedding_rows) if token_map is None else token_map).clone())
        self.token_embedding = nn.Embedding(cfg.embedding_rows, cfg.width)
        self.position_embedding = nn.Parameter(torch.randn(cfg.max_length, cfg.width) * 0.01)
        self.layers = nn.ModuleList(ClipEncoderLayer(cfg.width, cfg.heads) for _ in range(cfg.layers))
        self.final_layer_norm = nn.LayerNorm(cfg.width)
        causal = torch.full((cfg.max_length, cfg.max_length), float("-inf")).triu(1)
        self.register_buffer("causal_bias", causal, persistent=False)

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.token_embedding(self.token_map[input_ids]) + self.position_embedding
        for layer in self.layers:
            x = layer(x, bias=self.causal_bias)
        x = self.final_layer_norm(x)
        # CLIP pools at the EOS token, which has the largest id in the vocabulary: argmax finds the first one.
        eos_at = input_ids.argmax(dim=-1)
        pooled = x.gather(1, eos_at[:, None, None].expand(-1, 1, x.shape[-1])).squeeze(1)
        return x, pooled
