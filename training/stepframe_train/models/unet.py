"""A miniature SD UNet: sinusoidal timestep embedding, ResNet blocks, self- and cross-attention transformers."""
from __future__ import annotations

import torch
from torch import nn

from ..config import UnetConfig
from .layers import Downsample, MultiHeadAttention, ResnetBlock, Upsample, sinusoidal_embedding, to_grid, to_tokens


class GEGLU(nn.Module):
    """The gated feed-forward of SD's BasicTransformerBlock."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.proj = nn.Linear(dim, 2 * hidden)
        self.out = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return self.out(value * nn.functional.gelu(gate))


class SpatialTransformer(nn.Module):
    """GroupNorm, proj_in, [self-attn, cross-attn over encoder_hidden_states, GEGLU], proj_out, residual.

    Self-attention can be left out at the finest level, where its cost grows with (H·W)²; the
    cross-attention over the 77 conditioning tokens stays everywhere.

    With `image_tokens` > 0 the last that many conditioning tokens are the previous image's and get a cross-attention
    of their own (`attn2_image`, IP-Adapter's decoupled cross-attention), added to the text attention's output: the text
    tokens then compete only with each other in the softmax, exactly as in the text-only UNet.
    """

    def __init__(self, ch: int, heads: int, context_dim: int, groups: int, self_attention: bool = True, image_tokens: int = 0):
        super().__init__()
        self.norm = nn.GroupNorm(groups, ch, eps=1e-6)
        self.proj_in = nn.Linear(ch, ch)
        self.norm1 = nn.LayerNorm(ch) if self_attention else None
        self.attn1 = MultiHeadAttention(ch, heads) if self_attention else None
        self.norm2 = nn.LayerNorm(ch)
        self.attn2 = MultiHeadAttention(ch, heads, context_dim)
        self.image_tokens = image_tokens
        self.attn2_image = MultiHeadAttention(ch, heads, context_dim) if image_tokens else None
        self.norm3 = nn.LayerNorm(ch)
        self.ff = GEGLU(ch, 4 * ch)
        self.proj_out = nn.Linear(ch, ch)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        t = self.proj_in(to_tokens(self.norm(x)))
        if self.attn1 is not None:
            t = t + self.attn1(self.norm1(t))
        if self.attn2_image is None:
            t = t + self.attn2(self.norm2(t), context)
        else:
            n = self.norm2(t)
            text, image = context[:, : -self.image_tokens], context[:, -self.image_tokens :]
            t = t + self.attn2(n, text) + self.attn2_image(n, image)
        t = t + self.ff(self.norm3(t))
        return x + to_grid(self.proj_out(t), h, w)


class UNet(nn.Module):
    """sample [B, C, h, w], timestep [B] (int64, one per row), encoder_hidden_states [B, 77 (+ image tokens), D] -> out_sample (predicted noise)."""

    def __init__(self, cfg: UnetConfig):
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels
        temb = 4 * ch[0]
        self.time_embedding = nn.Sequential(nn.Linear(ch[0], temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(cfg.latent_channels, ch[0], 3, padding=1)

        def transformer(level: int) -> nn.Module:
            if level < cfg.cross_attention_from_level:
                return _NoContext()
            return SpatialTransformer(ch[level], cfg.heads, cfg.cross_attention_dim, cfg.groups, level >= cfg.self_attention_from_level,
                                      cfg.image_context_tokens)

        self.down_res = nn.ModuleList(ResnetBlock(ch[max(i - 1, 0)], c, cfg.groups, temb) for i, c in enumerate(ch))
        self.down_attn = nn.ModuleList(transformer(i) for i in range(len(ch)))
        self.downsamplers = nn.ModuleList(Downsample(c) for c in ch[:-1])
        self.mid_res1 = ResnetBlock(ch[-1], ch[-1], cfg.groups, temb)
        self.mid_attn = transformer(len(ch) - 1)
        self.mid_res2 = ResnetBlock(ch[-1], ch[-1], cfg.groups, temb)
        # Up path, deepest level first; each block takes the level's skip connection concatenated.
        self.up_res = nn.ModuleList(
            ResnetBlock(ch[i] + ch[min(i + 1, len(ch) - 1)] if i < len(ch) - 1 else 2 * ch[i], ch[i], cfg.groups, temb)
            for i in reversed(range(len(ch)))
        )
        self.up_attn = nn.ModuleList(transformer(i) for i in reversed(range(len(ch))))
        self.upsamplers = nn.ModuleList(Upsample(ch[i]) for i in reversed(range(1, len(ch))))
        self.norm_out = nn.GroupNorm(cfg.groups, ch[0], eps=1e-6)
        self.conv_out = nn.Conv2d(ch[0], cfg.latent_channels, 3, padding=1)

    def load_text_only(self, state: dict) -> None:
        """Loads a text-only UNet's weights (`state`) and starts every image cross-attention at zero output, so that
        fine-tuning begins from exactly the text-only model; a UNet without image attention just loads them."""
        missing, unexpected = self.load_state_dict(state, strict=False)
        if unexpected or any(".attn2_image." not in key for key in missing):
            raise ValueError(f"not a text-only UNet of this shape: missing {missing}, unexpected {unexpected}")
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, SpatialTransformer) and module.attn2_image is not None:
                    nn.init.zeros_(module.attn2_image.to_out.weight)
                    nn.init.zeros_(module.attn2_image.to_out.bias)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        temb = self.time_embedding(sinusoidal_embedding(timestep, self.cfg.channels[0]))
        h = self.conv_in(sample)
        skips = []
        for level, (res, attn) in enumerate(zip(self.down_res, self.down_attn)):
            h = attn(res(h, temb), encoder_hidden_states)
            skips.append(h)
            if level < len(self.downsamplers):
                h = self.downsamplers[level](h)
        h = self.mid_res2(self.mid_attn(self.mid_res1(h, temb), encoder_hidden_states), temb)
        for i, (res, attn) in enumerate(zip(self.up_res, self.up_attn)):
            h = attn(res(torch.cat([h, skips.pop()], dim=1), temb), encoder_hidden_states)
            if i < len(self.upsamplers):
                h = self.upsamplers[i](h)
        return self.conv_out(nn.functional.silu(self.norm_out(h)))


class _NoContext(nn.Module):
    """Stands in for the transformer at levels without attention (ResNet blocks only)."""

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return x
