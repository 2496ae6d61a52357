"""diffusers' UNet2DConditionModel, for the options SD 1.x and 2.x use, built from its config.json."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .attention import Transformer2DModel
from .config_reading import ConfigReader, is_int, is_int_list
from .resnet import Downsample2D, ResnetBlock2D, Upsample2D

DOWN_BLOCKS = ("CrossAttnDownBlock2D", "DownBlock2D")
UP_BLOCKS = ("CrossAttnUpBlock2D", "UpBlock2D")
# Options whose value changes nothing at inference or in the checkpoint's keys.
_INERT = ("addition_embed_type_num_heads",)


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int
    out_channels: int
    sample_size: int
    block_out_channels: tuple[int, ...]
    down_block_types: tuple[str, ...]
    up_block_types: tuple[str, ...]
    layers_per_block: int
    heads: tuple[int, ...]  # per level: diffusers' `attention_head_dim`, which SD's configs use as the head count
    transformer_layers: tuple[int, ...]
    cross_attention_dim: int
    use_linear_projection: bool
    upcast_attention: bool
    norm_num_groups: int
    norm_eps: float
    flip_sin_to_cos: bool
    freq_shift: int
    dropout: float

    @staticmethod
    def read(path: Path) -> "UNetConfig":
        r = ConfigReader(path)
        r.only("_class_name", "UNet2DConditionModel")
        levels = len(r.take("block_out_channels", check=is_int_list, expect="a list of channel counts"))
        per_level = lambda v: is_int(v) or (is_int_list(v) and len(v) == levels)  # noqa: E731
        # diffusers: num_attention_heads or attention_head_dim (which SD's configs use as the head count).
        head_dim = r.take("attention_head_dim", 8, per_level, f"an int or a list of {levels}")
        heads = r.take("num_attention_heads", None, lambda v: v is None or per_level(v), f"an int or a list of {levels}") or head_dim
        layers = r.take("transformer_layers_per_block", 1, per_level, f"an int or a list of {levels}")
        for key, supported in {
            "act_fn": ("silu",), "addition_embed_type": (None,), "addition_time_embed_dim": (None,), "attention_type": ("default",),
            "center_input_sample": (False,), "class_embed_type": (None,), "class_embeddings_concat": (False,), "conv_in_kernel": (3,),
            "conv_out_kernel": (3,), "cross_attention_norm": (None,), "downsample_padding": (1,), "dual_cross_attention": (False,),
            "encoder_hid_dim": (None,), "encoder_hid_dim_type": (None,), "mid_block_only_cross_attention": (None, False),
            "mid_block_scale_factor": (1, 1.0), "mid_block_type": ("UNetMidBlock2DCrossAttn",), "num_class_embeds": (None,),
            "only_cross_attention": (False,), "projection_class_embeddings_input_dim": (None,), "resnet_out_scale_factor": (1.0, 1),
            "resnet_skip_time_act": (False,), "resnet_time_scale_shift": ("default",), "reverse_transformer_layers_per_block": (None,),
            "time_cond_proj_dim": (None,), "time_embedding_act_fn": (None,), "time_embedding_dim": (None,),
            "time_embedding_type": ("positional",), "timestep_post_act": (None,),
        }.items():
            r.only(key, *supported)
        down = r.take("down_block_types", check=lambda v: isinstance(v, list) and len(v) == levels and all(t in DOWN_BLOCKS for t in v),
                      expect=f"{levels} of {', '.join(DOWN_BLOCKS)}")
        up = r.take("up_block_types", check=lambda v: isinstance(v, list) and len(v) == levels and all(t in UP_BLOCKS for t in v),
                    expect=f"{levels} of {', '.join(UP_BLOCKS)}")
        config = UNetConfig(
            in_channels=r.take("in_channels", 4, is_int, "a positive int"),
            out_channels=r.take("out_channels", 4, is_int, "a positive int"),
            sample_size=r.take("sample_size", 64, is_int, "an int"),
            block_out_channels=tuple(r.data["block_out_channels"]),
            down_block_types=tuple(down),
            up_block_types=tuple(up),
            layers_per_block=r.take("layers_per_block", 2, is_int, "an int"),
            heads=tuple(heads) if isinstance(heads, list) else (heads,) * levels,
            transformer_layers=tuple(layers) if isinstance(layers, list) else (layers,) * levels,
            cross_attention_dim=r.take("cross_attention_dim", 1280, is_int, "an int"),
            use_linear_projection=r.take("use_linear_projection", False, lambda v: isinstance(v, bool), "true or false"),
            upcast_attention=r.take("upcast_attention", False, lambda v: isinstance(v, bool), "true or false"),
            norm_num_groups=r.take("norm_num_groups", 32, is_int, "an int"),
            norm_eps=float(r.take("norm_eps", 1e-5, lambda v: isinstance(v, (int, float)) and v > 0, "a positive number")),
            flip_sin_to_cos=r.take("flip_sin_to_cos", True, lambda v: isinstance(v, bool), "true or false"),
            freq_shift=r.take("freq_shift", 0, lambda v: isinstance(v, (int, float)), "a number"),
            dropout=float(r.take("dropout", 0.0, lambda v: isinstance(v, (int, float)) and 0 <= v < 1, "a rate in [0, 1)")),
        )
        r.finish(_INERT)
        return config


def timestep_embedding(t: torch.Tensor, dim: int, flip_sin_to_cos: bool, shift: float) -> torch.Tensor:
    """diffusers' get_timestep_embedding: sinusoids at frequencies 10000^(−i/(half − shift)), [sin, cos] (or [cos, sin])."""
    half = dim // 2
    exponent = -math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / (half - shift)
    angles = t[:, None].float() * torch.exp(exponent)[None, :]
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class TimestepEmbedding(nn.Module):
    def __init__(self, channels: int, dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(channels, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class _Block(nn.Module):
    """One level of the down or up path: resnets, each followed by its attention where the block has it."""

    def __init__(self):
        super().__init__()
        self.gradient_checkpointing = False

    def _resnet(self, resnet: ResnetBlock2D, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        if self.gradient_checkpointing and self.training:
            return checkpoint(resnet, x, temb, use_reentrant=False)
        return resnet(x, temb)


class DownBlock(_Block):
    """CrossAttnDownBlock2D (with `attention`) or DownBlock2D."""

    def __init__(self, c: UNetConfig, level: int, in_channels: int, temb: int, attention: bool, downsample: bool):
        super().__init__()
        out = c.block_out_channels[level]
        self.resnets = nn.ModuleList([ResnetBlock2D(in_channels if j == 0 else out, out, temb, c.norm_num_groups, c.norm_eps, c.dropout)
                                      for j in range(c.layers_per_block)])
        if attention:
            self.attentions = nn.ModuleList([_transformer(c, c.heads[level], out, c.transformer_layers[level]) for _ in range(c.layers_per_block)])
        self.downsamplers = nn.ModuleList([Downsample2D(out, padding=1)]) if downsample else None

    def forward(self, x, temb, context):
        outputs = []
        for j, resnet in enumerate(self.resnets):
            x = self._resnet(resnet, x, temb)
            if hasattr(self, "attentions"):
                x = self.attentions[j](x, context)
            outputs.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            outputs.append(x)
        return x, outputs


class UpBlock(_Block):
    """CrossAttnUpBlock2D (with `attention`) or UpBlock2D: each resnet takes the next skip connection."""

    def __init__(self, c: UNetConfig, level: int, prev_channels: int, skip_in: int, out: int, temb: int, attention: bool, upsample: bool):
        super().__init__()
        n = c.layers_per_block + 1
        self.resnets = nn.ModuleList([
            ResnetBlock2D((prev_channels if j == 0 else out) + (skip_in if j == n - 1 else out), out, temb, c.norm_num_groups, c.norm_eps, c.dropout)
            for j in range(n)])
        heads = tuple(reversed(c.heads))[level]
        layers = tuple(reversed(c.transformer_layers))[level]
        if attention:
            self.attentions = nn.ModuleList([_transformer(c, heads, out, layers) for _ in range(n)])
        self.upsamplers = nn.ModuleList([Upsample2D(out)]) if upsample else None

    def forward(self, x, skips: list[torch.Tensor], temb, context, upsample_size):
        for j, resnet in enumerate(self.resnets):
            x = self._resnet(resnet, torch.cat([x, skips.pop()], dim=1), temb)
            if hasattr(self, "attentions"):
                x = self.attentions[j](x, context)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x, upsample_size)
        return x


class MidBlock(_Block):
    """UNetMidBlock2DCrossAttn: resnet, attention, resnet."""

    def __init__(self, c: UNetConfig, temb: int):
        super().__init__()
        ch = c.block_out_channels[-1]
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, temb, c.norm_num_groups, c.norm_eps, c.dropout) for _ in range(2)])
        self.attentions = nn.ModuleList([_transformer(c, c.heads[-1], ch, c.transformer_layers[-1])])

    def forward(self, x, temb, context):
        x = self._resnet(self.resnets[0], x, temb)
        x = self.attentions[0](x, context)
        return self._resnet(self.resnets[1], x, temb)


def _transformer(c: UNetConfig, heads: int, channels: int, layers: int) -> Transformer2DModel:
    return Transformer2DModel(heads, channels // heads, channels, layers, c.cross_attention_dim, c.norm_num_groups,
                              c.use_linear_projection, c.upcast_attention, c.dropout)


class UNet2DConditionModel(nn.Module):
    """ε (or v) prediction from (sample [B, C, h, w], timestep [B] or scalar, encoder_hidden_states [B, 77, D])."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        c = self.config = config
        boc = c.block_out_channels
        temb = boc[0] * 4
        self.conv_in = nn.Conv2d(c.in_channels, boc[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(boc[0], temb)
        levels = len(boc)
        self.down_blocks = nn.ModuleList([
            DownBlock(c, i, boc[i - 1] if i else boc[0], temb, c.down_block_types[i] == "CrossAttnDownBlock2D", i < levels - 1)
            for i in range(levels)])
        self.mid_block = MidBlock(c, temb)
        rev = tuple(reversed(boc))
        self.up_blocks = nn.ModuleList([
            UpBlock(c, i, rev[i - 1] if i else rev[0], rev[min(i + 1, levels - 1)], rev[i], temb,
                    c.up_block_types[i] == "CrossAttnUpBlock2D", i < levels - 1)
            for i in range(levels)])
        self.conv_norm_out = nn.GroupNorm(c.norm_num_groups, boc[0], eps=c.norm_eps)
        self.conv_out = nn.Conv2d(boc[0], c.out_channels, 3, padding=1)

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = enabled

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        c = self.config
        t = timestep.reshape(-1).expand(sample.shape[0]) if timestep.numel() == 1 else timestep
        t_emb = timestep_embedding(t, c.block_out_channels[0], c.flip_sin_to_cos, c.freq_shift).to(sample.dtype)
        temb = self.time_embedding(t_emb)
        x = self.conv_in(sample)
        skips = [x]
        for block in self.down_blocks:
            x, outputs = block(x, temb, encoder_hidden_states)
            skips.extend(outputs)
        x = self.mid_block(x, temb, encoder_hidden_states)
        for block in self.up_blocks:
            taken = skips[-len(block.resnets):]
            del skips[-len(block.resnets):]
            # Upsample to the next skip connection's size, so odd latent sizes come out as diffusers' do.
            size = tuple(skips[-1].shape[2:]) if block.upsamplers is not None else None
            x = block(x, taken, temb, encoder_hidden_states, size)
        return self.conv_out(F.silu(self.conv_norm_out(x)))
