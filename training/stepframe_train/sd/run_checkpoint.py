"""A fine-tuning run's folder: one checkpoint, written atomically, that resumes training and feeds the export."""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .stack import FuserShape

CHECKPOINT = "checkpoint.pt"
# AdamW's moments are twice the trainable weights (7 GB for SD 1.5's UNet): kept apart, so the export never loads them.
OPTIMIZER = "optimizer.pt"
FORMAT = "stepframe.sd_run"


def save_run(run_dir: Path, *, step: int, shape: FuserShape, fuser: torch.nn.Module, unet_state: dict[str, torch.Tensor],
             train_unet: str, optimizer: dict, settings: dict[str, Any], losses: dict[str, float], rng: dict[str, Any]) -> Path:
    """Writes RUN_DIR/checkpoint.pt through a temporary file, so a run stopped mid-write keeps its last checkpoint.

    `unet_state` holds only the UNet parameters that train (all, the attention ones, or none): the rest
    are the base's, which the export and a resumed run read from --base.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    # The optimizer first: a checkpoint.pt on disk always has an optimizer.pt of the same step beside it.
    _save_atomically({"step": step, "optimizer": optimizer}, run_dir / OPTIMIZER)
    return _save_atomically({"format": FORMAT, "step": step, "fuser_shape": asdict(shape), "fuser": fuser.state_dict(), "unet": unet_state,
                             "train_unet": train_unet, "settings": settings, "losses": losses, "rng": rng}, run_dir / CHECKPOINT)


def _save_atomically(value: dict, path: Path) -> Path:
    tmp = path.with_name(f"{path.name}.tmp")
    torch.save(value, tmp)
    os.replace(tmp, path)
    return path


def load_optimizer(run_dir: Path, step: int) -> dict:
    """The optimizer state saved with the checkpoint of `step` (only a resumed run needs it)."""
    state = torch.load(Path(run_dir) / OPTIMIZER, map_location="cpu")
    if state.get("step") != step:
        raise ValueError(f"{run_dir}: {OPTIMIZER} is from step {state.get('step')}, {CHECKPOINT} from step {step}")
    return state["optimizer"]


def load_run(run_dir: Path) -> dict[str, Any]:
    """The run's weights and settings (not its optimizer state)."""
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"{run_dir}: no {CHECKPOINT} (is it a run folder written by `npm run sd:finetune`?)")
    state = torch.load(path, map_location="cpu")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a stepframe SD fine-tuning checkpoint")
    return state
