"""diffusers' Attention, BasicTransformerBlock and Transformer2DModel (continuous input), as SD uses them."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


class Attention(nn.Module):
    """Multi-head attention with diffusers' names: to_q, to_k, to_v, to_out.0.

    With `upcast` the scores and softmax run in float32 whatever the input's dtype (SD 2.x's
    `upcast_attention`, which keeps fp16 from overflowing at 768²); in fp32 it changes nothing.
    """

    def __init__(self, query_dim: int, heads: int, dim_head: int, context_dim: int | None = None, bias: bool = False, upcast: bool = False):
        super().__init__()
        inner = heads * dim_head
        context_dim = context_dim or query_dim
        self.heads, self.scale, self.upcast = heads, dim_head**-0.5, upcast
        self.to_q = nn.Linear(query_dim, inner, bias=bias)
        self.to_k = nn.Linear(context_dim, inner, bias=bias)
        self.to_v = nn.Linear(context_dim, inner, bias=bias)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim), nn.Dropout(0.0)])

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        b, n, _ = x.shape
        q, k, v = self.to_q(x), self.to_k(context), self.to_v(context)
        q, k, v = (t.reshape(b, t.shape[1], self.heads, -1).transpose(1, 2) for t in (q, k, v))
        if self.upcast:
            scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * self.scale
            weights = scores.softmax(dim=-1).to(v.dtype)
        else:
            weights = (torch.matmul(q, k.transpose(-1, -2)) * self.scale).softmax(dim=-1)
        out = torch.matmul(weights, v).transpose(1, 2).reshape(b, n, -1)
        return self.to_out[1](self.to_out[0](out))


class GEGLU(nn.Module):
    def __init__(self, dim: int, inner: int):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden, gate = self.proj(x).chunk(2, dim=-1)
        return hidden * F.gelu(gate)


class FeedForward(nn.Module):
    """ff.net.0 (GEGLU to 4× width), ff.net.1 (dropout), ff.net.2 (back to width)."""

    def __init__(self, dim: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, dim * 4), nn.Dropout(dropout), nn.Linear(dim * 4, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class BasicTransformerBlock(nn.Module):
    """Self-attention, cross-attention to the conditioning, GEGLU feed-forward; pre-LayerNorm, residual."""

    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int, upcast: bool, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads, dim_head, upcast=upcast)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, heads, dim_head, context_dim=context_dim, upcast=upcast)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x


class Transformer2DModel(nn.Module):
    """GroupNorm, proj_in (1×1 conv, or linear with `use_linear_projection`), transformer blocks over the
    h·w positions, proj_out, plus the input."""

    def __init__(self, heads: int, dim_head: int, channels: int, layers: int, context_dim: int, groups: int,
                 linear_projection: bool, upcast: bool, dropout: float = 0.0):
        super().__init__()
        inner = heads * dim_head
        self.linear_projection = linear_projection
        self.gradient_checkpointing = False
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, inner) if linear_projection else nn.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(inner, heads, dim_head, context_dim, upcast, dropout) for _ in range(layers)])
        self.proj_out = nn.Linear(inner, channels) if linear_projection else nn.Conv2d(inner, channels, 1)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        hidden = self.norm(x)
        if self.linear_projection:
            hidden = self.proj_in(hidden.permute(0, 2, 3, 1).reshape(b, h * w, c))
        else:
            hidden = self.proj_in(hidden)
            hidden = hidden.permute(0, 2, 3, 1).reshape(b, h * w, hidden.shape[1])
        for block in self.transformer_blocks:
            if self.gradient_checkpointing and self.training:
                hidden = checkpoint(block, hidden, context, use_reentrant=False)
            else:
                hidden = block(hidden, context)
        if self.linear_projection:
            hidden = self.proj_out(hidden).reshape(b, h, w, c).permute(0, 3, 1, 2)
        else:
            hidden = self.proj_out(hidden.reshape(b, h, w, -1).permute(0, 3, 1, 2))
        return hidden + x
