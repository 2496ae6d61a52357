"""Does the frozen image encoder's output hold the vessel's shape?

A probe on each of its outputs.

    cd training && /usr/bin/python3 -m experiments.shape_probe

Fits a linear classifier and a small MLP (one hidden layer of 256) from each encoder output to the recipe's vessel
shape on the frames of --train-recipes training recipes, and prints their accuracy on the frames of --val-recipes
val recipes. The outputs: the pooled embedding (what image_pooling sees), the mean of the patch tokens, and all
tokens flattened (what concatenation, text_pooling and the attention fusers see). With three shapes, chance is
about a third. Reads runs/clip.pt; one thread.
"""
from __future__ import annotations

from stepframe_train.pipeline import threads  # noqa: F401  (before torch: one thread)

import argparse
from pathlib import Path

import torch
from torch import nn

from stepframe_train.config import default_stack
from stepframe_train.export import REPO
from stepframe_train.models.image_encoder import ImageEncoder
from stepframe_train.world.render import SHAPES, recipe_style
from stepframe_train.pipeline.data import load_split
from stepframe_train.pipeline.encode import encode_frames


def encoder_outputs(encoder: ImageEncoder, split_name: str, recipes: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    data = load_split(split_name, limit=recipes)
    hidden, pooled = encode_frames(encoder, data.frames)
    shapes = torch.tensor([SHAPES.index(recipe_style(r).shape) for r in data.recipes for _ in r.steps])
    return {"pooled": pooled, "mean of patch tokens": hidden[:, 1:].mean(1), "all tokens": hidden.flatten(1)}, shapes


def probe_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor, hidden: int,
                   steps: int = 2000, seed: int = 0) -> float:
    """Accuracy on (val_x, val_y) of a classifier fitted on standardised train_x; `hidden` 0 fits a linear one."""
    torch.manual_seed(seed)
    mean, std = train_x.mean(0), train_x.std(0) + 1e-5
    width, classes = train_x.shape[1], int(train_y.max()) + 1
    model = nn.Linear(width, classes) if not hidden else nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, classes))
    optimizer = torch.optim.Adam(model.parameters(), 1e-3, weight_decay=1e-4)
    for _ in range(steps):
        idx = torch.randint(len(train_x), (256,))
        loss = nn.functional.cross_entropy(model((train_x[idx] - mean) / std), train_y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float((model((val_x - mean) / std).argmax(1) == val_y).float().mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=REPO / "training" / "runs")
    parser.add_argument("--train-recipes", type=int, default=600)
    parser.add_argument("--val-recipes", type=int, default=100)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    encoder = ImageEncoder(default_stack("baseline").image)
    encoder.load_state_dict(torch.load(args.runs / "clip.pt")["image_encoder"])
    encoder.eval()
    train_x, train_y = encoder_outputs(encoder, "train", args.train_recipes)
    val_x, val_y = encoder_outputs(encoder, "val", args.val_recipes)
    print(f"vessel shape from the image encoder: {len(train_y)} training frames, {len(val_y)} val frames")
    for name in train_x:
        linear, mlp = (probe_accuracy(train_x[name], train_y, val_x[name], val_y, hidden) for hidden in (0, 256))
        print(f"  {name} ({train_x[name].shape[1]} values): linear {linear:.1%}, MLP {mlp:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
