"""Stage 1b: the CLIP text and image encoders, trained contrastively on the world's (step text, frame) pairs."""
from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from ..config import StackConfig
from ..models.encoders import build_image_encoder, build_text_encoder
from .data import WorldTensors, to_clip
from .schedules import cosine_lr, set_lr
from .settings import ContrastiveStage
from .log import Log


class ClipHeads(torch.nn.Module):
    """Projection heads and temperature used only for contrastive training."""

    def __init__(self, text_width: int, image_width: int, dim: int = 64):
        super().__init__()
        self.text_proj = torch.nn.Linear(text_width, dim, bias=False)
        self.image_proj = torch.nn.Linear(image_width, dim, bias=False)
        self.style_proj = torch.nn.Linear(image_width, dim, bias=False)
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))


def _soft_info_nce(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE where every pair marked in `positives` counts as a match."""
    targets = positives / positives.sum(dim=1, keepdim=True)
    targets_t = positives.T / positives.T.sum(dim=1, keepdim=True)
    return 0.5 * (torch.sum(-targets * F.log_softmax(logits, dim=1), dim=1).mean() + torch.sum(-targets_t * F.log_softmax(logits.T, dim=1), dim=1).mean())


def recipe_of_frame(previous: torch.Tensor) -> torch.Tensor:
    """Recipe index per frame: frames are stored recipe by recipe, and each recipe's first frame has no previous one."""
    return torch.cumsum((previous < 0).long(), dim=0) - 1


def train_clip(cfg: StackConfig, data: WorldTensors, token_map: torch.Tensor, stage: ContrastiveStage, log: Log) -> tuple[torch.nn.Module, torch.nn.Module, dict]:
    """The text and image encoders `cfg` names (the bundles' CLIP pair by default), trained together by `fit_contrastive`."""
    torch.manual_seed(stage.seed)
    text_encoder, image_encoder = build_text_encoder(cfg.text, token_map), build_image_encoder(cfg.image)
    heads = ClipHeads(cfg.text.width, cfg.image.width)
    losses = fit_contrastive(text_encoder, image_encoder, heads, data, stage, log)
    return text_encoder.eval(), image_encoder.eval(), losses


def fit_contrastive(text_encoder: torch.nn.Module, image_encoder: torch.nn.Module, heads: ClipHeads, data: WorldTensors,
                    stage: ContrastiveStage, log: Log, name: str = "clip") -> dict:
    """CLIP's symmetric InfoNCE on (step text, step image) pairs, identical texts counting as positives,
    plus the same loss between two frames of one recipe; returns the final moving averages of both.

    Why the second term: in this world the text never names the style, so text-image contrast alone
    teaches the image encoder to discard table and vessel colours, the very thing the fusers must pass
    on from the previous image. Real CLIP keeps such attributes because web captions mention them;
    pairing frames of one recipe (same style, different content) is this world's stand-in.
    `image_encoder` returns (hidden states or None, pooled) and only the pooled output is trained on.
    """
    params = list(text_encoder.parameters()) + list(image_encoder.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=stage.lr, weight_decay=stage.weight_decay)
    g = torch.Generator().manual_seed(stage.seed)
    steps, batch = stage.steps, stage.batch
    recipe = recipe_of_frame(data.previous)
    first = torch.nonzero(data.previous < 0).squeeze(1)
    length = torch.bincount(recipe)
    started, loss_avg, style_avg = time.time(), 0.0, 0.0
    for step in range(steps):
        set_lr(opt, cosine_lr(step, steps, stage.lr))
        idx = torch.randint(len(data.frames), (batch,), generator=g)
        r = recipe[idx]
        partner = first[r] + (torch.rand(batch, generator=g) * length[r]).long()
        text_idx = data.text_index[idx]
        _, tp = text_encoder(data.text_ids[text_idx])
        _, ip = image_encoder(to_clip(torch.cat([data.frames[idx], data.frames[partner]])))
        scale = heads.logit_scale.exp().clamp(max=100)
        t = F.normalize(heads.text_proj(tp), dim=-1)
        i = F.normalize(heads.image_proj(ip[:batch]), dim=-1)
        text_loss = _soft_info_nce(scale * i @ t.T, (text_idx[:, None] == text_idx[None, :]).float())
        a, b = F.normalize(heads.style_proj(ip), dim=-1).chunk(2)
        style_loss = _soft_info_nce(scale * a @ b.T, (r[:, None] == r[None, :]).float())
        loss = text_loss + style_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_avg = 0.98 * loss_avg + 0.02 * text_loss.item() if step else text_loss.item()
        style_avg = 0.98 * style_avg + 0.02 * style_loss.item() if step else style_loss.item()
        if step % 250 == 0 or step == steps - 1:
            log(f"{name} step {step}/{steps} text-image {loss_avg:.4f} same-recipe {style_avg:.4f} ({time.time() - started:.0f}s)")
    return {"contrastive": loss_avg, "same_recipe": style_avg}
