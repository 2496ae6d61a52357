"""KL autoencoder in the shape of SD's AutoencoderKL: ResNet stages, a mid attention block, 2C latent moments."""
from __future__ import annotations

import torch
from torch import nn

from ..config import VaeConfig
from .layers import Downsample, MultiHeadAttention, ResnetBlock, Upsample, to_grid, to_tokens


class MidBlock(nn.Module):
    """ResNet, single-head spatial self-attention, ResNet: SD's UNetMidBlock2D without time."""

    def __init__(self, ch: int, groups: int):
        super().__init__()
        self.res1 = ResnetBlock(ch, ch, groups)
        self.norm = nn.GroupNorm(groups, ch, eps=1e-6)
        self.attn = MultiHeadAttention(ch, 1)
        self.res2 = ResnetBlock(ch, ch, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res1(x)
        h, w = x.shape[-2:]
        x = x + to_grid(self.attn(to_tokens(self.norm(x))), h, w)
        return self.res2(x)


def fold_patches(x: torch.Tensor, patch: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, C*p*p, H/p, W/p] (space-to-depth), as reshapes and a transpose so ONNX export stays plain."""
    if patch == 1:
        return x
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(b, c * patch * patch, h // patch, w // patch)


def unfold_patches(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Inverse of `fold_patches`."""
    if patch == 1:
        return x
    b, cpp, h, w = x.shape
    c = cpp // (patch * patch)
    x = x.reshape(b, c, patch, patch, h, w)
    return x.permute(0, 1, 4, 2, 5, 3).reshape(b, c, h * patch, w * patch)


class VaeEncoder(nn.Module):
    """sample [B, 3, H, W] in [-1, 1] -> latent_parameters [B, 2C, H/f, W/f] (mean, log-variance)."""

    def __init__(self, cfg: VaeConfig):
        super().__init__()
        ch = cfg.channels
        self.patch = cfg.patch
        self.conv_in = nn.Conv2d(cfg.image_channels * cfg.patch**2, ch[0], 3, padding=1)
        stages: list[nn.Module] = []
        for i, out_ch in enumerate(ch):
            stages.append(ResnetBlock(ch[max(i - 1, 0)], out_ch, cfg.groups))
            if i < len(ch) - 1:
                stages.append(Downsample(out_ch))
        self.down = nn.Sequential(*stages)
        self.mid = MidBlock(ch[-1], cfg.groups)
        self.norm_out = nn.GroupNorm(cfg.groups, ch[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(ch[-1], 2 * cfg.latent_channels, 3, padding=1)
        self.quant_conv = nn.Conv2d(2 * cfg.latent_channels, 2 * cfg.latent_channels, 1)

    def forward(self, sample: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.down(self.conv_in(fold_patches(sample, self.patch))))
        return self.quant_conv(self.conv_out(nn.functional.silu(self.norm_out(h))))


class VaeDecoder(nn.Module):
    """latent_sample [B, C, h, w] (already divided by the scaling factor) -> sample [B, 3, h*f, w*f] in about [-1, 1]."""

    def __init__(self, cfg: VaeConfig):
        super().__init__()
        ch = tuple(reversed(cfg.channels))
        self.post_quant_conv = nn.Conv2d(cfg.latent_channels, cfg.latent_channels, 1)
        self.conv_in = nn.Conv2d(cfg.latent_channels, ch[0], 3, padding=1)
        self.mid = MidBlock(ch[0], cfg.groups)
        stages: list[nn.Module] = []
        for i, out_ch in enumerate(ch):
            stages.append(ResnetBlock(ch[max(i - 1, 0)], out_ch, cfg.groups))
            if i < len(ch) - 1:
                stages.append(Upsample(out_ch))
        self.up = nn.Sequential(*stages)
        self.norm_out = nn.GroupNorm(cfg.groups, ch[-1], eps=1e-6)
        self.patch = cfg.patch
        self.conv_out = nn.Conv2d(ch[-1], cfg.image_channels * cfg.patch**2, 3, padding=1)

    def forward(self, latent_sample: torch.Tensor) -> torch.Tensor:
        h = self.up(self.mid(self.conv_in(self.post_quant_conv(latent_sample))))
        return unfold_patches(self.conv_out(nn.functional.silu(self.norm_out(h))), self.patch)


class AutoencoderKL(nn.Module):
    def __init__(self, cfg: VaeConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = VaeEncoder(cfg)
        self.decoder = VaeDecoder(cfg)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the posterior's mean and log-variance."""
        mean, logvar = self.encoder(images).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)
