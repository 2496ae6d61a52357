"""Stages 3 and 4: the denoising objective with the paper's style term, for the text-only UNet and every fine-tuning."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..config import StackConfig
from ..models.unet import UNet
from ..stack import build_fuser_for, config_for_fuser
from .data import WorldTensors
from .schedules import cosine_lr, set_lr
from .settings import DenoisingSettings, DenoisingStage
from .log import Log


def sd_alphas_cumprod() -> torch.Tensor:
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float32) ** 2
    return torch.cumprod(1 - betas, dim=0)


@dataclass
class _Batch:
    """One training batch: clean latents, noise, timesteps, conditioning and the previous frames' latents."""

    x0: torch.Tensor
    noise: torch.Tensor
    t: torch.Tensor
    cond: torch.Tensor
    previous_latents: torch.Tensor
    has_previous: torch.Tensor  # the row has a previous frame at all
    given_previous: torch.Tensor  # ... and it was not dropped


def _draw_batch(data: WorldTensors, encoded: dict, fuser: torch.nn.Module, batch: int, losses: DenoisingSettings, g: torch.Generator) -> _Batch:
    """Samples frames, drops text and image conditions independently (InstructPix2Pix) and fuses what is left."""
    lat, prev = encoded["latents"], data.previous
    idx = torch.randint(len(lat), (batch,), generator=g)
    x0 = lat[idx]
    ti = data.text_index[idx]
    drop_text = torch.rand(batch, generator=g) < losses.text_dropout
    th = torch.where(drop_text[:, None, None], encoded["empty_hidden"], encoded["text_hidden"][ti])
    tp = torch.where(drop_text[:, None], encoded["empty_pooled"], encoded["text_pooled"][ti])
    p = prev[idx]
    given = (p >= 0) & ~(torch.rand(batch, generator=g) < losses.image_dropout)
    safe = p.clamp(min=0)  # rows without a previous frame get a stand-in; the losses mask them out

    def encoding(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Those frames' image encodings (hidden, pooled), zeros where the previous frame was not given."""
        hidden = torch.where(given[:, None, None], encoded["image_hidden"][frames], torch.zeros_like(encoded["image_hidden"][:1]))
        return hidden, torch.where(given[:, None], encoded["image_pooled"][frames], torch.zeros_like(encoded["image_pooled"][:1]))

    # A first-frame fuser's first frame is dropped with the previous one: the engine's unconditional image row zeroes both.
    images = encoding(safe) + (encoding(data.first[safe]) if fuser.uses_first_frame else ())
    cond = fuser(th, tp, *images)
    t = torch.randint(0, 1000, (batch,), generator=g)
    noise = torch.randn(x0.shape, generator=g) + losses.offset_noise * torch.randn(batch, x0.shape[1], 1, 1, generator=g)
    return _Batch(x0=x0, noise=noise, t=t, cond=cond, previous_latents=lat[safe], has_previous=p >= 0, given_previous=given)


def _style_term(b: _Batch, xt: torch.Tensor, eps: torch.Tensor, a: torch.Tensor, acp: torch.Tensor, losses: DenoisingSettings) -> torch.Tensor:
    """The paper's style term over the rows given their previous frame: per pixel (weighted by ᾱ_t) plus 4x4 cells."""
    x0_pred = (xt - (1 - a).sqrt() * eps) / a.sqrt()
    if losses.style_on_unchanged:
        fine, coarse = _masked_style_parts(x0_pred, b.previous_latents, unchanged_mask(b.x0, b.previous_latents))
        fine = fine * acp[b.t]
    else:
        fine, coarse = style_parts(x0_pred, b.previous_latents, acp[b.t])
    return ((fine + coarse) * b.given_previous).sum() / b.given_previous.sum()


def style_parts(x0_pred: torch.Tensor, previous_latents: torch.Tensor, acp_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's L2 style-consistency term per row [B], in two parts: per latent pixel, weighted by ᾱ_t, and over
    4×4 cells at every timestep (train_unet says why). The SD fine-tuning (stepframe_train.sd.finetune) uses it as is."""
    fine = ((x0_pred - previous_latents) ** 2).mean(dim=(1, 2, 3)) * acp_t
    coarse = ((F.adaptive_avg_pool2d(x0_pred, 4) - F.adaptive_avg_pool2d(previous_latents, 4)) ** 2).mean(dim=(1, 2, 3)).clamp(max=4.0)
    return fine, coarse


def train_unet(cfg: StackConfig, data: WorldTensors, encoded: dict, stage: DenoisingStage, log: Log, fuser_kind: str = "baseline",
               unet: UNet | None = None, data_rank: int = 0,
               sync_gradients: Callable[[list[torch.nn.Parameter]], None] | None = None) -> tuple[UNet, torch.nn.Module, dict]:
    """The denoising objective (ε-prediction, SD's schedule) plus the paper's style term.

    Text and image conditions are dropped independently (InstructPix2Pix), so text and image
    guidance scales can be set separately at sampling time. The style term is an L2 loss between
    the predicted clean image and the previous step's image, computed on latents (decoding every
    training step would triple its cost) and weighted by ᾱ_t so that near-pure-noise steps, whose
    x̂₀ is a blur, do not dominate it. That weighting also silences the term exactly where the style
    is decided (the first, noisiest sampling steps), so a second, coarse part compares x̂₀ and the
    previous latent averaged over 4×4 cells (the layout of table, vessel and board colours) at every
    timestep: averaging 16 latent pixels per cell keeps the noise that x̂₀ amplifies at high t in check.
    Both parts count only rows that were given the previous image.

    Offset noise (a per-sample, per-channel constant added to the noise, scaled by `offset_noise`):
    on 16×16 latents the average colour survives even SD's noisiest timestep (the mean of 256 noise
    values has a std of 1/16), so without it the UNet learns to read the table colour off x_t, and at
    sampling time, where x_T holds no colour, it invents one instead of taking it from the previous
    image. With the offset the average colour in x_t is unreliable and the conditioning is the only
    source of it.

    With `losses.style_on_unchanged` the style term counts only the latent pixels the step leaves as they were
    (`unchanged_mask`): the paper's term compares the whole frame with the previous one, so it also pulls
    against what the step's text adds, and a larger style weight costs text faithfulness (docs/experiments.md).

    With `losses.change_weight` > 0 the denoising loss also counts the latent pixels where the frame differs from the previous
    one more (`change_weights`), so what the step's text changes is not outweighed by what stays the same.

    The denoising loss is weighted by min(SNR, γ)/SNR (Min-SNR-γ, Hang et al. 2023): nearly clean
    timesteps stop pulling the gradients their way (the paper reports 3.4x faster convergence; not
    measured separately here).
    With `sync_gradients` (data_parallel.average_gradients) several processes train one model, each
    drawing its own batches (`data_rank`) from the same initial weights.
    """
    losses = stage.losses
    torch.manual_seed(stage.seed)
    cfg = config_for_fuser(cfg, fuser_kind)
    unet = unet if unet is not None else UNet(cfg.unet)
    fuser = build_fuser_for(cfg)
    fuser.start_from_text()
    params = list(unet.parameters()) + list(fuser.parameters())
    opt = torch.optim.AdamW([{"params": list(unet.parameters())}, {"params": list(fuser.parameters()), "lr_scale": losses.fuser_lr_scale}],
                            lr=losses.lr, weight_decay=losses.weight_decay)
    ema = [p.detach().clone() for p in params]
    acp = sd_alphas_cumprod()
    snr = acp / (1 - acp)
    snr_weight = torch.clamp(snr, max=losses.min_snr_gamma) / snr if losses.min_snr_gamma > 0 else torch.ones_like(snr)
    g = torch.Generator().manual_seed(stage.seed + 1000 * data_rank)
    started, loss_avg, style_avg = time.time(), 0.0, 0.0
    for step in range(stage.steps):
        set_lr(opt, cosine_lr(step, stage.steps, losses.lr))
        b = _draw_batch(data, encoded, fuser, stage.batch, losses, g)
        a = acp[b.t].view(-1, 1, 1, 1)
        xt = a.sqrt() * b.x0 + (1 - a).sqrt() * b.noise
        eps = unet(xt, b.t, b.cond)
        squared = (eps - b.noise) ** 2
        if losses.change_weight > 0:
            squared = squared * change_weights(b.x0, b.previous_latents, b.has_previous, losses.change_weight)
        loss = (squared.mean(dim=(1, 2, 3)) * snr_weight[b.t]).mean()
        style = torch.tensor(0.0)
        if losses.style_weight > 0 and bool(b.given_previous.any()):
            style = _style_term(b, xt, eps, a, acp, losses)
            loss = loss + losses.style_weight * style
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if sync_gradients is not None:
            sync_gradients(params)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        _update_ema(ema, params, step, losses.ema_decay)
        loss_avg = 0.98 * loss_avg + 0.02 * loss.item() if step else loss.item()
        style_avg = 0.98 * style_avg + 0.02 * style.item() if step else style.item()
        if step % 250 == 0 or step == stage.steps - 1:
            log(f"unet[{fuser_kind}] step {step}/{stage.steps} loss {loss_avg:.4f} style {style_avg:.4f} ({time.time() - started:.0f}s)")
    with torch.no_grad():
        for e, q in zip(ema, params):
            q.copy_(e)
    return unet.eval(), fuser.eval(), {"denoise": loss_avg, "style": style_avg}


@torch.no_grad()
def _update_ema(ema: list[torch.Tensor], params: list[torch.nn.Parameter], step: int, decay: float) -> None:
    """Exponential moving average of the weights, its decay warming up over the first steps (what is exported)."""
    rate = min(decay, (1 + step) / (10 + step))
    for e, q in zip(ema, params):
        e.mul_(rate).add_(q.detach(), alpha=1 - rate)


def _relative_change(x0: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """[B, 1, H, W]: each latent pixel's change from the previous frame ÷ the image's mean change."""
    change = (x0 - previous).abs().mean(dim=1, keepdim=True)
    return change / change.mean(dim=(2, 3), keepdim=True).clamp(min=1e-6)


def unchanged_mask(x0: torch.Tensor, previous: torch.Tensor, relative: float = 0.5) -> torch.Tensor:
    """[B, 1, H, W]: 1 where a latent pixel changed from the previous frame by less than `relative` × the image's
    mean change (the table, the rim, the contents the step leaves alone), else 0."""
    return (_relative_change(x0, previous) < relative).float()


def _masked_style_parts(x0_pred: torch.Tensor, previous: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The style term's per-pixel and 4x4-cell parts [B], over the pixels in `mask` only (cells: masked means)."""
    squared = ((x0_pred - previous) ** 2).mean(dim=1, keepdim=True) * mask
    fine = squared.sum(dim=(1, 2, 3)) / mask.sum(dim=(1, 2, 3)).clamp(min=1.0)
    cover = F.adaptive_avg_pool2d(mask, 4)
    cell_diff = F.adaptive_avg_pool2d((x0_pred - previous) * mask, 4) / cover.clamp(min=1e-3)
    coarse = ((cell_diff**2).mean(dim=1, keepdim=True) * (cover > 0)).sum(dim=(1, 2, 3)) / (cover > 0).sum(dim=(1, 2, 3)).clamp(min=1)
    return fine, coarse.clamp(max=4.0)


def change_weights(x0: torch.Tensor, previous: torch.Tensor, has_previous: torch.Tensor, strength: float) -> torch.Tensor:
    """Per-latent-pixel loss weights [B, 1, H, W]: 1 + `strength` × (the pixel's change from the previous frame ÷ the
    image's mean change), normalised to mean 1 per image so the loss keeps its scale.

    Most of a step's frame repeats the previous one; what the step's text is about (a new ingredient, a stir) is
    a few latent cells. Unweighted, the model given the previous image lowers its loss most by copying it and
    learns to ignore the text there (docs/experiments.md: the fusers draw almost none of the whole vegetables).
    First steps (no previous frame) weigh every pixel alike."""
    weights = 1 + strength * _relative_change(x0, previous)
    weights = weights / weights.mean(dim=(2, 3), keepdim=True)
    return torch.where(has_previous.view(-1, 1, 1, 1), weights, torch.ones_like(weights))
