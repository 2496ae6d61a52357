"""transformers' CLIPTextModel(WithProjection) and CLIPVisionModel(WithProjection), built from config.json.

Only the options that change the computation are read; the rest of a transformers config
(dropout rates, initialiser scales, generation settings that PretrainedConfig writes) never touches
a CLIP forward pass, so it is not refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config_reading import ConfigReader, is_int

TEXT_ARCHITECTURES = ("CLIPTextModel", "CLIPTextModelWithProjection")
VISION_ARCHITECTURES = ("CLIPVisionModel", "CLIPVisionModelWithProjection")
# Buffers older transformers versions saved with the weights; they hold arange(n) and are not parameters.
IGNORABLE_BUFFERS = ("text_model.embeddings.position_ids", "vision_model.embeddings.position_ids")


@dataclass(frozen=True)
class ClipConfig:
    """The options of one CLIP tower; text-only and vision-only fields are None for the other tower."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    hidden_act: str
    layer_norm_eps: float
    projection_dim: int
    with_projection: bool
    vocab_size: int | None = None
    max_position_embeddings: int | None = None
    eos_token_id: int | None = None
    image_size: int | None = None
    patch_size: int | None = None
    num_channels: int = 3

    @staticmethod
    def read(path: Path, tower: str, data: dict[str, Any] | None = None, architecture: str | None = None) -> "ClipConfig":
        """`tower` is "text" or "vision"; `data` and `architecture` when the config sits inside a CLIPModel's."""
        r = ConfigReader(path, data)
        names = TEXT_ARCHITECTURES if tower == "text" else VISION_ARCHITECTURES
        if architecture is None:
            architectures = r.take("architectures", [names[0]], lambda v: isinstance(v, list) and len(v) == 1 and v[0] in names, " or ".join(names))
            architecture = architectures[0]
        act = r.only("hidden_act", "quick_gelu", "gelu")
        common = dict(
            hidden_size=r.take("hidden_size", check=is_int, expect="a positive int"),
            intermediate_size=r.take("intermediate_size", check=is_int, expect="a positive int"),
            num_hidden_layers=r.take("num_hidden_layers", check=is_int, expect="a positive int"),
            num_attention_heads=r.take("num_attention_heads", check=is_int, expect="a positive int"),
            hidden_act=act,
            layer_norm_eps=float(r.take("layer_norm_eps", 1e-5, lambda v: isinstance(v, (int, float)) and v > 0, "a positive number")),
            projection_dim=r.take("projection_dim", 512, is_int, "a positive int"),
            with_projection=architecture.endswith("WithProjection"),
        )
        if tower == "text":
            return ClipConfig(**common, vocab_size=r.take("vocab_size", check=is_int, expect="a positive int"),
                              max_position_embeddings=r.take("max_position_embeddings", 77, is_int, "a positive int"),
                              eos_token_id=r.take("eos_token_id", 2, lambda v: isinstance(v, int), "an int"))
        return ClipConfig(**common, image_size=r.take("image_size", 224, is_int, "a positive int"),
                          patch_size=r.take("patch_size", 32, is_int, "a positive int"),
                          num_channels=r.take("num_channels", 3, lambda v: v == 3, "3"))


def _activation(name: str):
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    return F.gelu


class ClipAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = (p(x).reshape(b, n, self.heads, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        scores = torch.matmul(q * self.scale, k.transpose(-1, -2))
        if mask is not None:
            scores = scores + mask
        out = torch.matmul(scores.softmax(dim=-1), v).transpose(1, 2).reshape(b, n, d)
        return self.out_proj(out)


class ClipMlp(nn.Module):
    def __init__(self, dim: int, hidden: int, act: str):
        super().__init__()
        self.fc1, self.fc2, self.act = nn.Linear(dim, hidden), nn.Linear(hidden, dim), _activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class ClipLayer(nn.Module):
    def __init__(self, c: ClipConfig):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.self_attn = ClipAttention(c.hidden_size, c.num_attention_heads)
        self.layer_norm2 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.mlp = ClipMlp(c.hidden_size, c.intermediate_size, c.hidden_act)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class ClipEncoder(nn.Module):
    def __init__(self, c: ClipConfig):
        super().__init__()
        self.layers = nn.ModuleList([ClipLayer(c) for _ in range(c.num_hidden_layers)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, mask)
        return x


class TextEmbeddings(nn.Module):
    def __init__(self, c: ClipConfig):
        super().__init__()
        self.token_embedding = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position_embedding = nn.Embedding(c.max_position_embeddings, c.hidden_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.token_embedding(ids) + self.position_embedding.weight[: ids.shape[1]][None]


class TextTransformer(nn.Module):
    def __init__(self, c: ClipConfig):
        super().__init__()
        self.eos_token_id = c.eos_token_id
        self.embeddings = TextEmbeddings(c)
        self.encoder = ClipEncoder(c)
        self.final_layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = ids.shape[1]
        causal = torch.full((n, n), torch.finfo(torch.float32).min, device=ids.device).triu(1)[None, None]
        hidden = self.final_layer_norm(self.encoder(self.embeddings(ids), causal))
        rows = torch.arange(ids.shape[0], device=ids.device)
        if self.eos_token_id == 2:
            # transformers' legacy rule (configs from before it read eos_token_id): the EOS token has the highest id.
            eos = ids.to(torch.int64).argmax(dim=-1)
        else:
            eos = (ids.to(torch.int64) == self.eos_token_id).int().argmax(dim=-1)
        return hidden, hidden[rows, eos]


class ClipTextModel(nn.Module):
    """input_ids [B, 77] → (last_hidden_state [B, 77, D], pooler_output [B, D], text_embeds [B, P] or None)."""

    def __init__(self, config: ClipConfig):
        super().__init__()
        self.config = config
        self.text_model = TextTransformer(config)
        if config.with_projection:
            self.text_projection = nn.Linear(config.hidden_size, config.projection_dim, bias=False)

    def forward(self, input_ids: torch.Tensor):
        hidden, pooled = self.text_model(input_ids)
        return hidden, pooled, (self.text_projection(pooled) if self.config.with_projection else None)


class VisionEmbeddings(nn.Module):
    def __init__(self, c: ClipConfig):
        super().__init__()
        self.class_embedding = nn.Parameter(torch.zeros(c.hidden_size))
        self.patch_embedding = nn.Conv2d(c.num_channels, c.hidden_size, c.patch_size, stride=c.patch_size, bias=False)
        self.position_embedding = nn.Embedding((c.image_size // c.patch_size) ** 2 + 1, c.hidden_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embedding(pixels).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(patches.dtype).expand(pixels.shape[0], 1, -1)
        return torch.cat([cls, patches], dim=1) + self.position_embedding.weight[None]


class VisionTransformer(nn.Module):
    def __init__(self, c: ClipConfig):
        super().__init__()
        self.embeddings = VisionEmbeddings(c)
        self.pre_layrnorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)  # sic: transformers' name
        self.encoder = ClipEncoder(c)
        self.post_layernorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(self.pre_layrnorm(self.embeddings(pixels)))
        return hidden, self.post_layernorm(hidden[:, 0])


class ClipVisionModel(nn.Module):
    """pixel_values [B, 3, S, S] → (last_hidden_state [B, 1 + (S/p)², D], pooler_output [B, D], image_embeds [B, P] or None)."""

    def __init__(self, config: ClipConfig):
        super().__init__()
        self.config = config
        self.vision_model = VisionTransformer(config)
        if config.with_projection:
            self.visual_projection = nn.Linear(config.hidden_size, config.projection_dim, bias=False)

    def forward(self, pixel_values: torch.Tensor):
        hidden, pooled = self.vision_model(pixel_values)
        return hidden, pooled, (self.visual_projection(pooled) if self.config.with_projection else None)
