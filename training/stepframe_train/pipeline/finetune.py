"""Stage 4: one fuser and a copy of the shared text-only UNet, trained together."""
from __future__ import annotations

from pathlib import Path

import torch

from ..config import StackConfig, default_stack
from ..models.unet import UNet
from ..stack import config_for_fuser
from .checkpoints import first_stage_checkpoints, trained_config
from .data import WorldTensors, load_split
from .denoising import train_unet
from .settings import FinetuneStage, TrainingConfig
from .log import Log


def finetune_from_text(cfg: StackConfig, data: WorldTensors, encoded: dict, text_unet: dict, kind: str, stage: FinetuneStage,
                       log: Log) -> tuple[UNet, torch.nn.Module, dict]:
    """One fuser and a copy of the shared text-only UNet (`text_unet`, its state dict) trained together.

    The baseline never sees the previous image, so the style term could only pull it towards the average previous
    frame (on 24 val recipes its text probe fell from 49.3% before fine-tuning to 42.3%, docs/experiments.md): it
    trains without it (FinetuneStage.run_for), as the paper's baseline is plain SD.
    """
    unet = UNet(config_for_fuser(cfg, kind).unet)
    unet.load_text_only(text_unet)
    return train_unet(cfg, data, encoded, stage.run_for(kind), log, fuser_kind=kind, unet=unet)


def finetune_from_runs(runs: Path, kind: str, stage: FinetuneStage, log: Log, config: TrainingConfig = TrainingConfig()) -> tuple[UNet, torch.nn.Module, dict]:
    """`finetune_from_text` on what `train_all --stop-after unet` left in `runs` (the autoencoder's scaling, the encoded
    training set, the text-only UNet), over the pipeline's training split: what the trials fine-tune from."""
    cfg = trained_config(default_stack(kind), first_stage_checkpoints(runs)[0])
    data = load_split("train", config.world_seed, limit=config.recipes)
    return finetune_from_text(cfg, data, torch.load(runs / "encoded.pt"), torch.load(runs / "unet_text.pt")["unet"], kind, stage, log)
