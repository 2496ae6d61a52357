"""Automatic checks of generated frames against the world's ground truth.

- Text faithfulness: the colour the step introduces (the added or chopped vegetable, the sprinkle)
  must cover at least half as many pixels of its region (vessel or board) as it does in the
  autoencoder's reconstruction of the reference frame: a fair bar, since no generated image can be
  sharper than what the autoencoder can represent. Where the reconstruction itself shows fewer than
  6 such pixels, the bar of 6 is one the decoder does not reach on that step, so the pass rate is
  also reported over the steps the reconstruction passes (`text_probe_pass_showable`).
- Style error: the mean colour of the table and of the vessel's rim vs the reference frame (RGB, 0-255).
- PSNR vs the reference frame.
"""
from __future__ import annotations

import numpy as np

from .recipes import SPRINKLES, VEGETABLES, Recipe, Step
from .render import BOARD, SHAPES, recipe_style, render_recipe, table_mask, vessel_masks

_x0, _y0, _x1, _y1 = BOARD
BOARD_MASK = np.zeros((64, 64), bool)
BOARD_MASK[_y0 : _y1 + 1, _x0 : _x1 + 1] = True


def _chroma(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = img.astype(np.float32) + 1.0
    total = f.sum(-1, keepdims=True)
    return f / total, total[..., 0] / 3.0


# Chromaticity distance under which a pixel counts as the step's colour. Strict for dark colours, where a few RGB
# units move the chromaticity a lot; docs/experiments.md measures how the probe moves with it.
PROBE_TOLERANCE = 0.045


def colour_count(img: np.ndarray, rgb: tuple[int, int, int], region: np.ndarray, tolerance: float = PROBE_TOLERANCE) -> int:
    """Pixels in `region` whose chromaticity is near `rgb`'s and brightness within lighting range."""
    chroma, brightness = _chroma(img)
    target = np.array(rgb, np.float32) + 1.0
    target_chroma, target_brightness = target / target.sum(), target.sum() / 3.0
    near = np.linalg.norm(chroma - target_chroma, axis=-1) < tolerance
    lit = (brightness > target_brightness * 0.55) & (brightness < target_brightness * 1.45 + 10)
    return int((near & lit & region).sum())


def probe_target(recipe: Recipe, step: Step) -> tuple[tuple[int, int, int], np.ndarray] | None:
    """The colour a step must show and where, or None for steps that introduce no colour (stir, bake)."""
    inside, _ = vessel_masks(recipe_style(recipe).shape)
    if step.action == "add":
        return VEGETABLES[step.subject], inside
    if step.action == "chop":
        return VEGETABLES[step.subject], BOARD_MASK
    if step.action == "sprinkle":
        return SPRINKLES[step.subject], inside
    return None


def probe_kind(step: Step) -> str | None:
    """What the probe looks for on `step`, by how the world draws it (render.py): "chop" (eight 3x3 pieces on the
    board), "add whole" (three discs of radius 4), "add pieces" (nine 3x3 pieces: the ingredient was chopped or the
    vessel has been stirred), "sprinkle" (forty 2x2 specks); None for steps the probe skips."""
    if step.action in ("chop", "sprinkle"):
        return step.action
    if step.action != "add":
        return None
    chopped = dict(step.state.vessel)[step.subject]
    return "add pieces" if chopped or step.state.stirred else "add whole"


MIN_PROBE_PIXELS = 6


def text_probe(recipe: Recipe, step: Step, generated: np.ndarray, reference_recon: np.ndarray, tolerance: float = PROBE_TOLERANCE) -> bool | None:
    target = probe_target(recipe, step)
    if target is None:
        return None
    rgb, region = target
    expected = colour_count(reference_recon, rgb, region, tolerance)
    return colour_count(generated, rgb, region, tolerance) >= max(MIN_PROBE_PIXELS, 0.5 * expected)


def probe_row(recipe: Recipe, step: Step, generated: np.ndarray, reference: np.ndarray, reference_recon: np.ndarray) -> dict:
    """One frame's scores, as `summarise` takes them."""
    return {
        "probe": text_probe(recipe, step, generated, reference_recon),
        "showable": text_probe(recipe, step, reference_recon, reference_recon),
        "style": style_error(recipe, generated, reference),
        "psnr": psnr(generated, reference),
    }


def style_parts(recipe: Recipe, generated: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(table, vessel rim): the distance between the mean colours of each, masks from the reference's style."""
    shape = recipe_style(recipe).shape
    _, rim = vessel_masks(shape)
    table_error, rim_error = (float(np.linalg.norm(generated[mask].astype(np.float32).mean(0) - reference[mask].astype(np.float32).mean(0)))
                              for mask in (table_mask(shape), rim))
    return table_error, rim_error


def style_error(recipe: Recipe, generated: np.ndarray, reference: np.ndarray) -> float:
    """Mean over (table, vessel rim) of `style_parts`."""
    return float(np.mean(style_parts(recipe, generated, reference)))


def rim_colour(frame: np.ndarray, shape: str) -> np.ndarray:
    """The mean colour (float RGB) of the frame's pixels under the rim of a vessel of `shape`."""
    return frame[vessel_masks(shape)[1]].astype(np.float32).mean(0)


def drawn_vessel_shape(generated: np.ndarray, rim_rgb: np.ndarray) -> str:
    """The vessel shape a frame shows: the one whose rim is nearest `rim_rgb` (the reference's `rim_colour`) and most
    even in colour. A wrong shape puts its rim mask partly on the table and the vessel's inside, which moves its mean and
    spreads its colours. On the rendered frames of the first 40 val recipes it names every recipe's own shape
    (tests/test_world.py)."""
    def mismatch(shape: str) -> float:
        pixels = generated[vessel_masks(shape)[1]].astype(np.float32)
        return float(np.linalg.norm(pixels.mean(0) - rim_rgb) + pixels.std(0).mean())
    return min(SHAPES, key=mismatch)


def style_rows_by_position(recipes: list[Recipe], generated: dict) -> dict[int, list[tuple[float, float, bool]]]:
    """For the 1st, 2nd, ... generated frame of each recipe: the style error's table and rim parts, and whether the frame
    keeps the reference's vessel shape. `generated` holds each recipe's generated frames by recipe id, as
    train/evaluate.py returns them (its first frame is the one after the given reference frame)."""
    by_position: dict[int, list[tuple[float, float, bool]]] = {}
    for recipe in recipes:
        reference = render_recipe(recipe)
        shape = recipe_style(recipe).shape
        rim_rgb = rim_colour(reference[0], shape)
        for position, frame in enumerate(generated[recipe.recipe_id], start=1):
            table, rim = style_parts(recipe, frame, reference[position])
            by_position.setdefault(position, []).append((table, rim, drawn_vessel_shape(frame, rim_rgb) == shape))
    return by_position


def shape_kept_share(recipes: list[Recipe], generated: dict) -> float:
    """The share of all generated frames that keep the reference's vessel shape (a third by chance)."""
    return float(np.mean([kept for rows in style_rows_by_position(recipes, generated).values() for _, _, kept in rows]))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def summarise(rows: list[dict]) -> dict:
    """Means over scored frames, each row as `probe_row` makes it; None where nothing was scored.
    PSNR is capped at 60 dB so that an identical frame does not make the mean infinite."""
    probes = [r["probe"] for r in rows if r["probe"] is not None]
    showable = [r["probe"] for r in rows if r["showable"]]
    return {
        "frames": len(rows),
        "probed_steps": len(probes),
        "text_probe_pass": float(np.mean(probes)) if probes else None,
        "showable_steps": len(showable),
        "text_probe_pass_showable": float(np.mean(showable)) if showable else None,
        "style_error": float(np.mean([r["style"] for r in rows])) if rows else None,
        "psnr": float(np.mean([min(r["psnr"], 60.0) for r in rows])) if rows else None,
    }
