"""diffusers' AutoencoderKL (SD's VAE), built from its config.json."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .config_reading import ConfigReader, is_int, is_int_list
from .resnet import Downsample2D, ResnetBlock2D, Upsample2D

# force_upcast says to decode in fp32 under fp16 pipelines: the export keeps the VAE fp32 where asked.
_INERT = ("force_upcast",)
# Older diffusers wrote the mid-block attention as query/key/value/proj_attn; diffusers renames them on load.
LEGACY_ATTENTION_NAMES = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


@dataclass(frozen=True)
class VaeConfig:
    in_channels: int
    out_channels: int
    latent_channels: int
    block_out_channels: tuple[int, ...]
    layers_per_block: int
    norm_num_groups: int
    sample_size: int
    scaling_factor: float

    @property
    def downscale(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    @staticmethod
    def read(path: Path) -> "VaeConfig":
        r = ConfigReader(path)
        r.only("_class_name", "AutoencoderKL")
        levels = len(r.take("block_out_channels", check=is_int_list, expect="a list of channel counts"))
        r.take("down_block_types", ["DownEncoderBlock2D"] * levels, lambda v: v == ["DownEncoderBlock2D"] * levels, f"{levels} × DownEncoderBlock2D")
        r.take("up_block_types", ["UpDecoderBlock2D"] * levels, lambda v: v == ["UpDecoderBlock2D"] * levels, f"{levels} × UpDecoderBlock2D")
        for key, supported in {"act_fn": ("silu",), "shift_factor": (None,), "latents_mean": (None,), "latents_std": (None,),
                               "use_quant_conv": (True,), "use_post_quant_conv": (True,), "mid_block_add_attention": (True,)}.items():
            r.only(key, *supported)
        config = VaeConfig(
            in_channels=r.take("in_channels", 3, is_int, "a positive int"),
            out_channels=r.take("out_channels", 3, is_int, "a positive int"),
            latent_channels=r.take("latent_channels", 4, is_int, "a positive int"),
            block_out_channels=tuple(r.data["block_out_channels"]),
            layers_per_block=r.take("layers_per_block", 1, is_int, "an int"),
            norm_num_groups=r.take("norm_num_groups", 32, is_int, "an int"),
            sample_size=r.take("sample_size", 512, is_int, "an int"),
            scaling_factor=float(r.take("scaling_factor", 0.18215, lambda v: isinstance(v, (int, float)) and v > 0, "a positive number")),
        )
        r.finish(_INERT)
        return config


class VaeAttention(nn.Module):
    """The mid block's single-head self-attention over h·w positions, with its own GroupNorm and a residual."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels), nn.Dropout(0.0)])
        self.scale = channels**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        hidden = self.group_norm(x).reshape(b, c, h * w).transpose(1, 2)
        q, k, v = self.to_q(hidden), self.to_k(hidden), self.to_v(hidden)
        weights = (torch.matmul(q, k.transpose(-1, -2)) * self.scale).float().softmax(dim=-1).to(v.dtype)
        out = self.to_out[0](torch.matmul(weights, v))
        return out.transpose(1, 2).reshape(b, c, h, w) + x


class VaeMidBlock(nn.Module):
    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(channels, channels, None, groups, 1e-6) for _ in range(2)])
        self.attentions = nn.ModuleList([VaeAttention(channels, groups)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class EncoderBlock(nn.Module):
    def __init__(self, in_channels: int, out: int, layers: int, groups: int, downsample: bool):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(in_channels if j == 0 else out, out, None, groups, 1e-6) for j in range(layers)])
        self.downsamplers = nn.ModuleList([Downsample2D(out, padding=0)]) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        return self.downsamplers[0](x) if self.downsamplers is not None else x


class DecoderBlock(nn.Module):
    def __init__(self, in_channels: int, out: int, layers: int, groups: int, upsample: bool):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(in_channels if j == 0 else out, out, None, groups, 1e-6) for j in range(layers)])
        self.upsamplers = nn.ModuleList([Upsample2D(out)]) if upsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        return self.upsamplers[0](x) if self.upsamplers is not None else x


class Encoder(nn.Module):
    def __init__(self, c: VaeConfig):
        super().__init__()
        boc, g = c.block_out_channels, c.norm_num_groups
        self.conv_in = nn.Conv2d(c.in_channels, boc[0], 3, padding=1)
        self.down_blocks = nn.ModuleList([EncoderBlock(boc[i - 1] if i else boc[0], boc[i], c.layers_per_block, g, i < len(boc) - 1)
                                          for i in range(len(boc))])
        self.mid_block = VaeMidBlock(boc[-1], g)
        self.conv_norm_out = nn.GroupNorm(g, boc[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(boc[-1], 2 * c.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        return self.conv_out(F.silu(self.conv_norm_out(self.mid_block(x))))


class Decoder(nn.Module):
    def __init__(self, c: VaeConfig):
        super().__init__()
        rev, g = tuple(reversed(c.block_out_channels)), c.norm_num_groups
        self.conv_in = nn.Conv2d(c.latent_channels, rev[0], 3, padding=1)
        self.mid_block = VaeMidBlock(rev[0], g)
        self.up_blocks = nn.ModuleList([DecoderBlock(rev[i - 1] if i else rev[0], rev[i], c.layers_per_block + 1, g, i < len(rev) - 1)
                                        for i in range(len(rev))])
        self.conv_norm_out = nn.GroupNorm(g, rev[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(rev[-1], c.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            x = block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class AutoencoderKL(nn.Module):
    def __init__(self, config: VaeConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.quant_conv = nn.Conv2d(2 * config.latent_channels, 2 * config.latent_channels, 1)
        self.post_quant_conv = nn.Conv2d(config.latent_channels, config.latent_channels, 1)

    def latent_parameters(self, sample: torch.Tensor) -> torch.Tensor:
        """[B, 2C, h, w]: the latent distribution's mean and log-variance, as Optimum's vae_encoder gives them."""
        return self.quant_conv(self.encoder(sample))

    def encode_mean(self, sample: torch.Tensor) -> torch.Tensor:
        return self.latent_parameters(sample).chunk(2, dim=1)[0]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Image in [-1, 1] from latents already divided by the scaling factor."""
        return self.decoder(self.post_quant_conv(latents))


def rename_legacy_attention(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """query/key/value/proj_attn → to_q/to_k/to_v/to_out.0 in the mid blocks (1×1-conv shaped weights flattened)."""
    renamed = {}
    for key, tensor in state.items():
        parts = key.split(".")
        if "attentions" in parts and len(parts) >= 2 and parts[-2] in LEGACY_ATTENTION_NAMES:
            key = ".".join(parts[:-2] + [LEGACY_ATTENTION_NAMES[parts[-2]], parts[-1]])
            if tensor.dim() == 4:
                tensor = tensor[:, :, 0, 0]
        renamed[key] = tensor
    return renamed
