"""Scores frames generated outside Python (the TypeScript engine) against the exported test split.

    /usr/bin/python3 -m stepframe_train.world.score --test-split ../training/world_test \
        --generated DIR --reconstructed DIR

Both folders hold PNGs named like the test split's (`<recipe id>-<step>.png`); `reconstructed`
holds the autoencoder's round trip of the reference frames, which the text probe counts against.
Prints one JSON object: text probe pass rate, style error and PSNR over the frames present; with
--rows, one JSON object per frame instead ({"image", "probe", "showable", "style"}; probe is
null on steps that introduce no colour), which `stepframe eval` aggregates per recipe.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from .metrics import probe_row, summarise
from .recipes import make_recipe


def score(test_split: Path, generated: Path, reconstructed: Path) -> dict:
    return summarise([row for _, row in frame_rows(test_split, generated, reconstructed)])


def frame_rows(test_split: Path, generated: Path, reconstructed: Path) -> list[tuple[str, dict]]:
    """(image name, probe_row) for every frame of `generated` that the split names."""
    meta = json.loads((test_split / "recipes.json").read_text())
    rows = []
    for entry in meta["recipes"]:
        recipe = make_recipe(entry["recipe_id"], meta["seed"])
        for step, info in zip(recipe.steps, entry["steps"]):
            candidate = generated / info["image"]
            if not candidate.exists():
                continue
            frame = np.asarray(Image.open(candidate).convert("RGB"))
            reference = np.asarray(Image.open(test_split / info["image"]).convert("RGB"))
            recon = np.asarray(Image.open(reconstructed / info["image"]).convert("RGB"))
            rows.append((info["image"], probe_row(recipe, step, frame, reference, recon)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test-split", type=Path, required=True)
    parser.add_argument("--generated", type=Path, required=True)
    parser.add_argument("--reconstructed", type=Path, required=True)
    parser.add_argument("--rows", action="store_true", help="one object per frame instead of the summary")
    args = parser.parse_args()
    if args.rows:
        # PSNR stays out: `stepframe eval` computes its own, and an identical frame's is infinite, which JSON cannot hold.
        rows = frame_rows(args.test_split, args.generated, args.reconstructed)
        print(json.dumps([{"image": name, "probe": row["probe"], "showable": row["showable"], "style": row["style"]} for name, row in rows]))
    else:
        print(json.dumps(score(args.test_split, args.generated, args.reconstructed)))


if __name__ == "__main__":
    main()
