"""A sequence dataset in the layout `stepframe eval` reads, as training pairs for the SD fine-tuning.

SPLIT_DIR/recipes.json is `{recipes: [{recipe_id, steps: [{text, image}]}]}` with the images beside
it (the recipe world's export, or a real dataset such as YouCookII converted to it). Every step is a
training row: its text and image, and the previous step's image as the conditioning (none for the
first step, as in serving).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..manifest import CLIP_MEAN, CLIP_STD


@dataclass(frozen=True)
class Row:
    text: str
    image: Path
    previous: Path | None


def read_split(split_dir: Path) -> list[Row]:
    path = Path(split_dir) / "recipes.json"
    if not path.exists():
        raise FileNotFoundError(f"{split_dir}: no recipes.json (the layout `stepframe eval` reads)")
    recipes = json.loads(path.read_text()).get("recipes")
    if not isinstance(recipes, list) or not recipes:
        raise ValueError(f"{path}: recipes must be a non-empty list")
    rows: list[Row] = []
    for r, recipe in enumerate(recipes):
        previous = None
        for s, step in enumerate(recipe.get("steps") or []):
            if not isinstance(step.get("text"), str) or not isinstance(step.get("image"), str):
                raise ValueError(f"{path}: recipes[{r}].steps[{s}] needs a text and an image")
            image = path.parent / step["image"]
            if not image.exists():
                raise FileNotFoundError(f"{path}: recipes[{r}].steps[{s}].image {step['image']} does not exist")
            rows.append(Row(step["text"], image, previous))
            previous = image
    return rows


def _resize_crop(image: Image.Image, size: int, resample: int) -> Image.Image:
    """Shortest edge to `size`, then the centre `size`×`size` square."""
    w, h = image.size
    scale = size / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), resample)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return image.crop((left, top, left + size, top + size))


def vae_pixels(path: Path, resolution: int) -> torch.Tensor:
    """[3, R, R] in [-1, 1]: what the VAE encodes (the frame the UNet learns to make)."""
    image = _resize_crop(Image.open(path).convert("RGB"), resolution, Image.BICUBIC)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)


def clip_pixels(path: Path, preprocessor: dict) -> torch.Tensor:
    """[3, S, S]: CLIPImageProcessor's resize, centre crop, rescale and normalisation, from preprocessor_config.json."""
    size = preprocessor.get("crop_size", {}).get("height", 224) if isinstance(preprocessor.get("crop_size"), dict) else preprocessor.get("crop_size", 224)
    image = _resize_crop(Image.open(path).convert("RGB"), size, preprocessor.get("resample", 3))
    mean = torch.tensor(preprocessor.get("image_mean", CLIP_MEAN))[:, None, None]
    std = torch.tensor(preprocessor.get("image_std", CLIP_STD))[:, None, None]
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) * preprocessor.get("rescale_factor", 1 / 255)).permute(2, 0, 1)
    return (pixels - mean) / std
