"""The recipe world as training tensors: frames, previous-frame links and tokenised step texts."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from ..clip_tokenizer import ClipTokenizer
from ..export import DEFAULT_TOKENIZER
from ..manifest import CLIP_MEAN, CLIP_STD
from ..world.recipes import Recipe, split
from ..world.render import render_recipe


@dataclass
class WorldTensors:
    frames: torch.Tensor  # uint8 [N, 3, 64, 64]
    previous: torch.Tensor  # int64 [N], index of the previous step's frame or -1 for a first step
    text_index: torch.Tensor  # int64 [N], into `texts`
    texts: list[str]
    text_ids: torch.Tensor  # int64 [T, 77]
    recipes: list[Recipe]

    @cached_property
    def first(self) -> torch.Tensor:
        """int64 [N]: index of the recipe's first frame for every frame (itself for a first step), which the sequence
        fusers see beside the previous frame."""
        first = torch.arange(len(self.previous))
        for i, p in enumerate(self.previous.tolist()):  # frames are stored in step order, so a previous frame comes first
            if p >= 0:
                first[i] = first[p]
        return first


def load_split(name: str, seed: int = 0, limit: int | None = None) -> WorldTensors:
    recipes = split(name, seed)[:limit]
    tokenizer = ClipTokenizer.load(DEFAULT_TOKENIZER)
    frames, previous, text_index, texts = [], [], [], {}
    for recipe in recipes:
        rendered = render_recipe(recipe)
        for i, step in enumerate(recipe.steps):
            previous.append(len(frames) - 1 if i > 0 else -1)
            frames.append(rendered[i])
            text_index.append(texts.setdefault(step.text, len(texts)))
    ordered = sorted(texts, key=texts.get)
    return WorldTensors(
        frames=torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous(),
        previous=torch.tensor(previous),
        text_index=torch.tensor(text_index),
        texts=ordered,
        text_ids=torch.tensor([tokenizer.encode_padded(t) for t in ordered]),
        recipes=recipes,
    )


def to_unit(frames_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [B,3,H,W] -> float in [-1, 1], the VAE's range."""
    return frames_uint8.float() / 127.5 - 1.0


_MEAN = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
_STD = torch.tensor(CLIP_STD).view(1, 3, 1, 1)


def to_clip(frames_uint8: torch.Tensor) -> torch.Tensor:
    """CLIPImageProcessor at the crop size: rescale to [0, 1], normalise."""
    return (frames_uint8.float() / 255.0 - _MEAN) / _STD
