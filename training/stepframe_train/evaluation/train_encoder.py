"""Trains the evaluation's image encoder and writes it where `stepframe eval` reads it.

    cd training && /usr/bin/python3 -m stepframe_train.evaluation.train_encoder --out ../models/evaluation

The encoder (models/evaluation_encoder.py) is trained with the same contrastive objective as the bundles'
CLIP encoders (text-image pairs plus frames of one recipe) but with its own architecture, its own text tower
and its own seed, and no bundle ever sees it. Writes image_encoder.onnx ([B, 3, 64, 64] CLIP-normalised
pixels -> image_embeds [B, 128], unit length) and encoder.json (preprocessing, seed, losses, held-out checks).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from ..pipeline import threads  # noqa: F401  (before torch: one thread)
import torch

from ..config import TextEncoderConfig
from ..export import DEFAULT_TOKENIZER, world_token_map
from ..manifest import CLIP_MEAN, CLIP_STD
from ..models.evaluation_encoder import EvaluationEmbedding, EvaluationImageEncoder
from ..models.text_encoder import TextEncoder
from ..onnx_export import ComponentExport, export_onnx
from ..pipeline.contrastive import ClipHeads, fit_contrastive, recipe_of_frame
from ..pipeline.data import WorldTensors, load_split, to_clip
from ..pipeline.settings import ContrastiveStage, TrainingConfig

# Its own seed: the bundles' stages use 11 to 15 (pipeline/settings.py).
STAGE = ContrastiveStage(seed=21)


@torch.no_grad()
def held_out_checks(embedding: EvaluationEmbedding, val: WorldTensors) -> dict:
    """On val frames: how often a frame's nearest other frame is from its own recipe, and the mean cosine
    similarity of frame pairs within one recipe and across recipes."""
    vectors = torch.cat([embedding(to_clip(val.frames[i : i + 256])) for i in range(0, len(val.frames), 256)])
    similarity = vectors @ vectors.T
    recipe = recipe_of_frame(val.previous)
    same = recipe[:, None] == recipe[None, :]
    off_diagonal = ~torch.eye(len(vectors), dtype=torch.bool)
    nearest = similarity.masked_fill(~off_diagonal, -2).argmax(dim=1)
    return {
        "val_frames": len(vectors),
        "nearest_frame_same_recipe": float((recipe[nearest] == recipe).float().mean()),
        "cosine_same_recipe": float(similarity[same & off_diagonal].mean()),
        "cosine_other_recipes": float(similarity[~same].mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=STAGE.steps)
    parser.add_argument("--batch", type=int, default=STAGE.batch)
    parser.add_argument("--recipes", type=int, default=TrainingConfig().recipes, help="training recipes (the same as the bundles' stages)")
    args = parser.parse_args(argv)
    started = time.time()
    stage = replace(STAGE, steps=args.steps, batch=args.batch)
    torch.manual_seed(stage.seed)
    text_cfg = TextEncoderConfig()
    text_encoder = TextEncoder(text_cfg, world_token_map(DEFAULT_TOKENIZER, text_cfg.embedding_rows))
    image_encoder = EvaluationImageEncoder()
    heads = ClipHeads(text_cfg.width, image_encoder.width)
    data = load_split("train", limit=args.recipes)
    losses = fit_contrastive(text_encoder, image_encoder, heads, data, stage, lambda m: print(m, flush=True), name="evaluation encoder")
    embedding = EvaluationEmbedding(image_encoder.eval(), heads.image_proj, heads.style_proj).eval()
    checks = held_out_checks(embedding, load_split("val"))
    args.out.mkdir(parents=True, exist_ok=True)
    export_onnx(ComponentExport("image_encoder", embedding, (torch.zeros(2, 3, 64, 64),), ("pixel_values",), ("image_embeds",)), args.out / "image_encoder.onnx")
    description = {
        "what": "stepframe's evaluation image encoder: used by `stepframe eval` only, by no bundle",
        "architecture": "convolutional (strided stem and 4 stages, GroupNorm + SiLU, a 2x2 grid flattened), content and style projections",
        "input": {"name": "pixel_values", "size": 64, "resample": "none: frames are scored at the bundle's own 64x64", "image_mean": CLIP_MEAN, "image_std": CLIP_STD, "rescale": 1 / 255},
        "output": {"name": "image_embeds", "dims": 2 * heads.image_proj.out_features, "unit_length": True},
        "training": {"seed": stage.seed, "steps": args.steps, "batch": args.batch, "recipes": args.recipes, "losses": losses,
                     "command": "cd training && /usr/bin/python3 -m stepframe_train.evaluation.train_encoder --out ../models/evaluation",
                     "wall_seconds": round(time.time() - started)},
        "held_out": checks,
    }
    (args.out / "encoder.json").write_text(json.dumps(description, indent=1) + "\n")
    print(json.dumps(checks), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
