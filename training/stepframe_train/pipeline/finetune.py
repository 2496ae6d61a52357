"""Stage 4: one fuser and a copy of the shared text-only UNet, trained together."""
from __future__ import annotations

import torch

from ..config import StackConfig
from ..models.unet import UNet
from ..stack import config_for_fuser
from .data import WorldTensors
from .denoising import train_unet
from .settings import FinetuneStage
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
