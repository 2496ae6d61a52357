"""The text and image encoder a config names, by its `kind`."""
from __future__ import annotations

import torch
from torch import nn

from ..config import ImageEncoderConfig, TextEncoderConfig
from .bag_text_encoder import BagOfTokensEncoder
from .conv_image_encoder import ConvImageEncoder
from .image_encoder import ImageEncoder
from .text_encoder import TextEncoder

_TEXT = {"transformer": TextEncoder, "bag": BagOfTokensEncoder}
_IMAGE = {"vit": ImageEncoder, "conv": ConvImageEncoder}


def build_text_encoder(cfg: TextEncoderConfig, token_map: torch.Tensor | None = None) -> nn.Module:
    if cfg.kind not in _TEXT:
        raise ValueError(f"unknown text encoder kind {cfg.kind!r}; expected one of {', '.join(_TEXT)}")
    return _TEXT[cfg.kind](cfg, token_map)


def build_image_encoder(cfg: ImageEncoderConfig) -> nn.Module:
    if cfg.kind not in _IMAGE:
        raise ValueError(f"unknown image encoder kind {cfg.kind!r}; expected one of {', '.join(_IMAGE)}")
    return _IMAGE[cfg.kind](cfg)
