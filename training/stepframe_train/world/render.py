"""Draws a dish state in a recipe's style as a 64x64 RGB image (numpy, uint8)."""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from .recipes import SPRINKLES, VEGETABLES, DishState, Recipe

SIZE = 64
BOARD = (49, 10, 62, 54)  # x0, y0, x1, y1: where chopped ingredients wait
BOARD_RGB = (196, 160, 112)
TABLE_COLOURS = [(120, 80, 50), (60, 90, 140), (150, 150, 150), (200, 190, 170), (70, 120, 80), (160, 60, 60), (90, 60, 110), (40, 40, 45)]
VESSEL_COLOURS = [(230, 230, 235), (40, 40, 40), (180, 60, 40), (60, 110, 170), (220, 190, 60), (90, 160, 150), (150, 90, 160), (200, 120, 150)]
SHAPES = ("round", "square", "oval")


@dataclass(frozen=True)
class Style:
    """Never mentioned in the text: only the previous image shows it."""

    table: tuple[int, int, int]
    vessel: tuple[int, int, int]
    shape: str
    light_gain: float
    light_angle: float


def recipe_style(recipe: Recipe) -> Style:
    rng = random.Random(recipe.style_seed)
    return Style(rng.choice(TABLE_COLOURS), rng.choice(VESSEL_COLOURS), rng.choice(SHAPES), rng.uniform(0.75, 1.15), rng.uniform(0, 2 * np.pi))


_yy, _xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)


def vessel_masks(shape: str) -> tuple[np.ndarray, np.ndarray]:
    """(inside, rim) boolean masks of the vessel."""
    cx, cy = 25.0, 32.0
    if shape == "round":
        d = np.hypot(_xx - cx, _yy - cy) / 20.0
    elif shape == "oval":
        d = np.hypot((_xx - cx) / 22.0, (_yy - cy) / 16.0)
    else:
        d = np.maximum(np.abs(_xx - cx), np.abs(_yy - cy)) / 19.0
    outer = d <= 1.0
    inner = d <= 0.84
    return inner, outer & ~inner


def table_mask(shape: str) -> np.ndarray:
    inside, rim = vessel_masks(shape)
    x0, y0, x1, y1 = BOARD
    board = (_xx >= x0 - 1) & (_xx <= x1 + 1) & (_yy >= y0 - 1) & (_yy <= y1 + 1)
    return ~(inside | rim | board)


def _pieces(rng: random.Random, inside: np.ndarray, count: int) -> list[tuple[int, int]]:
    ys, xs = np.nonzero(inside)
    picks = [rng.randrange(len(xs)) for _ in range(count)]
    return [(int(xs[i]), int(ys[i])) for i in picks]


def _stamp(img: np.ndarray, x: int, y: int, radius: float, rgb, square: bool, clip: np.ndarray | None = None) -> None:
    r = int(np.ceil(radius))
    y0, y1, x0, x1 = max(0, y - r), min(SIZE, y + r + 1), max(0, x - r), min(SIZE, x + r + 1)
    yy, xx = _yy[y0:y1, x0:x1], _xx[y0:y1, x0:x1]
    m = (np.maximum(np.abs(xx - x), np.abs(yy - y)) <= radius) if square else (np.hypot(xx - x, yy - y) <= radius)
    if clip is not None:
        m &= clip[y0:y1, x0:x1]
    img[y0:y1, x0:x1][m] = rgb


def render(recipe: Recipe, state: DishState) -> np.ndarray:
    style = recipe_style(recipe)
    img = np.empty((SIZE, SIZE, 3), np.float32)
    img[:] = style.table
    x0, y0, x1, y1 = BOARD
    img[y0 : y1 + 1, x0 : x1 + 1] = BOARD_RGB
    inside, rim = vessel_masks(style.shape)
    img[rim] = style.vessel
    base = np.array(style.vessel, np.float32) * 0.45 + 20
    if state.stirred and state.vessel:
        # Stirring mixes a sauce from everything in the vessel.
        sauce = np.mean([VEGETABLES[x] for x, _ in state.vessel], axis=0)
        base = base * 0.4 + sauce * 0.6
    img[inside] = base
    for index, (x, chopped) in enumerate(state.vessel):
        rng = random.Random(recipe.style_seed * 31 + index * 7 + state.stirred * 1009)
        count, radius = (9, 1.5) if chopped or state.stirred else (3, 4.0)
        for px, py in _pieces(rng, inside, count):
            _stamp(img, px, py, radius, VEGETABLES[x], square=chopped or bool(state.stirred), clip=inside)
    if state.board is not None:
        x, chopped = state.board
        rng = random.Random(recipe.style_seed * 17 + 3)
        for _ in range(8):
            _stamp(img, rng.randint(x0 + 2, x1 - 2), rng.randint(y0 + 3, y1 - 3), 1.5, VEGETABLES[x], square=True)
    for index, s in enumerate(state.sprinkles):
        rng = random.Random(recipe.style_seed * 13 + index)
        for px, py in _pieces(rng, inside, 40):
            img[py : py + 2, px : px + 2] = SPRINKLES[s]  # a 2x2 speck: the world's smallest element
    if state.baked:
        img[inside] = img[inside] * 0.65 + np.array([175, 115, 40], np.float32) * 0.35
        img[rim] = img[rim] * 0.8
    # Lighting: a global gain and a soft directional gradient.
    gradient = 1.0 + 0.18 * (np.cos(style.light_angle) * (_xx - 32) + np.sin(style.light_angle) * (_yy - 32)) / 32
    img = img * (style.light_gain * gradient)[..., None]
    return np.clip(img, 0, 255).round().astype(np.uint8)


def render_recipe(recipe: Recipe) -> np.ndarray:
    """[n_steps, 64, 64, 3] uint8."""
    return np.stack([render(recipe, step.state) for step in recipe.steps])
