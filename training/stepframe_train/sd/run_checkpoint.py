"""A fine-tuning run's folder: one checkpoint, written atomically, that resumes training and feeds the export."""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .stack import FuserShape

CHECKPOINT = "checkpoint.pt"
FORMAT = "stepframe.sd_run"


def save_run(run_dir: Path, *, step: int, shape: FuserShape, fuser: torch.nn.Module, unet_state: dict[str, torch.Tensor],
             train_unet: str, optimizer: dict, settings: dict[str, Any], losses: dict[str, float], rng: dict[str, Any]) -> Path:
    """Writes RUN_DIR/checkpoint.pt through a temporary file, so a run stopped mid-write keeps its last checkpoint.

    `unet_state` holds only the UNet parameters that train (all, the attention ones, or none): the rest
    are the base's, which the export and a resumed run read from --base.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CHECKPOINT
    tmp = run_dir / f"{CHECKPOINT}.tmp"
    torch.save({"format": FORMAT, "step": step, "fuser_shape": asdict(shape), "fuser": fuser.state_dict(), "unet": unet_state,
                "train_unet": train_unet, "optimizer": optimizer, "settings": settings, "losses": losses, "rng": rng}, tmp)
    os.replace(tmp, path)
    return path


def load_run(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"{run_dir}: no {CHECKPOINT} (is it a run folder written by `npm run sd:finetune`?)")
    state = torch.load(path, map_location="cpu")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a stepframe SD fine-tuning checkpoint")
    return state
