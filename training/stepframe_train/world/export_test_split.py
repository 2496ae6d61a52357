"""Writes the test split as files (recipes.json with step texts, and reference PNGs) for evaluation without Python.

    cd training && /usr/bin/python3 -m stepframe_train.world.export_test_split --out world_test
    cd training && /usr/bin/python3 -m stepframe_train.world.export_test_split --split val --recipes 32 --out /tmp/world_val

The split is a function of the world's seed alone, so training/world_test stays valid across retrainings.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image

from .recipes import split
from .render import recipe_style, render_recipe


def export_test_split(out: Path, seed: int = 0, name: str = "test", limit: int | None = None) -> None:
    """Writes split `name` (the first `limit` recipes of it) to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for recipe in split(name, seed)[:limit]:
        frames = render_recipe(recipe)
        files = []
        for i, frame in enumerate(frames):
            name = f"{recipe.recipe_id:05d}-{i + 1:02d}.png"
            Image.fromarray(frame).save(out / name, optimize=True)
            files.append(name)
        style = recipe_style(recipe)
        entries.append({
            "recipe_id": recipe.recipe_id,
            "steps": [{"text": s.text, "action": s.action, "subject": s.subject, "image": f} for s, f in zip(recipe.steps, files)],
            "style": {"table": style.table, "vessel": style.vessel, "shape": style.shape, "light_gain": round(style.light_gain, 4)},
        })
    (out / "recipes.json").write_text(json.dumps({"seed": seed, "split": name, "recipes": entries}, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0, help="the recipe world's seed")
    parser.add_argument("--split", choices=("test", "val"), default="test", help="val: for choices made before the test split is scored")
    parser.add_argument("--recipes", type=int, default=None, help="the first N recipes only")
    args = parser.parse_args(argv)
    export_test_split(args.out, args.seed, args.split, args.recipes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
