"""One function per training stage. Each takes the previous stages' weights and returns its own."""
from __future__ import annotations

import math
import time
from typing import Callable

import torch
import torch.nn.functional as F

from ..config import StackConfig
from ..models.fusers import FUSER_KINDS
from ..models.image_encoder import ImageEncoder
from ..models.text_encoder import TextEncoder
from ..models.unet import UNet
from ..models.vae import AutoencoderKL
from ..stack import build_fuser_for
from .data import WorldTensors, to_clip, to_unit

Log = Callable[[str], None]


def _cosine(step: int, total: int, base: float, warmup: int = 100) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def detail_weights(x: torch.Tensor, strength: float) -> torch.Tensor:
    """Per-pixel loss weights [B, 1, H, W]: 1 on flat areas, up to about 1 + 3 * strength where a pixel differs
    from its 5x5 neighbourhood. Without them the reconstruction loss is ruled by the large flat table and vessel,
    and the pieces and specks the text is about (a few dozen pixels each) wash into the background."""
    local_mean = F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    return 1.0 + strength * (x - local_mean).abs().sum(1, keepdim=True)


def reconstruction_loss(recon: torch.Tensor, x: torch.Tensor, detail_weight: float) -> torch.Tensor:
    """L1 + L2, each pixel counted by `detail_weights`, normalised so the weighting moves emphasis, not scale."""
    error = recon - x
    weights = detail_weights(x, detail_weight)
    return ((error.abs() + error**2) * weights).mean() / weights.mean()


def _fit_autoencoder(vae: AutoencoderKL, data: WorldTensors, steps: int, batch: int, log: Log, seed: int, lr: float,
                     detail_weight: float, kl_weight: float, decoder_only: bool, name: str) -> float:
    """The training loop of `train_vae` (everything) and `refine_decoder` (the decoder, on the frozen encoder's
    posterior samples); returns the reconstruction loss's moving average at the last step."""
    vae.encoder.requires_grad_(not decoder_only)
    opt = torch.optim.AdamW(vae.decoder.parameters() if decoder_only else vae.parameters(), lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    started, recon_avg = time.time(), 0.0
    for step in range(steps):
        _set_lr(opt, _cosine(step, steps, lr))
        x = to_unit(data.frames[torch.randint(len(data.frames), (batch,), generator=g)])
        with torch.set_grad_enabled(not decoder_only):
            mean, logvar = vae.encode(x)
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        kl = 0.5 * torch.mean(mean**2 + logvar.exp() - 1 - logvar)
        recon_loss = reconstruction_loss(vae.decoder(z), x, detail_weight)
        loss = recon_loss + kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        recon_avg = 0.98 * recon_avg + 0.02 * recon_loss.item() if step else recon_loss.item()
        if step % 250 == 0 or step == steps - 1:
            log(f"{name} step {step}/{steps} recon {recon_avg:.4f} kl {kl.item():.3f} ({time.time() - started:.0f}s, {(time.time() - started) / (step + 1):.3f} s/step)")
    vae.eval()
    return recon_avg


def train_vae(cfg: StackConfig, data: WorldTensors, val: WorldTensors, steps: int, batch: int, log: Log, seed: int,
              lr: float = 1.5e-3, detail_weight: float = 0.0, kl_weight: float = 1e-6) -> tuple[AutoencoderKL, float, dict]:
    """L1 + L2 reconstruction, weighted towards small details (`detail_weights`), with a small KL term (SD's 1e-6 by
    default); returns the model, its scaling factor and final losses (with the PSNR of held-out `val` frames, the
    figure issue 3 sets a floor for)."""
    torch.manual_seed(seed)
    vae = AutoencoderKL(cfg.vae)
    recon_avg = _fit_autoencoder(vae, data, steps, batch, log, seed, lr, detail_weight, kl_weight, decoder_only=False, name="vae")
    with torch.no_grad():
        means = torch.cat([vae.encode(to_unit(data.frames[i : i + 256]))[0] for i in range(0, min(len(data.frames), 4096), 256)])
        val_psnr = held_out_psnr(vae, val)
    scaling = float(1.0 / means.std())
    log(f"vae held-out PSNR {val_psnr:.2f} dB over {len(val.frames)} frames")
    return vae, scaling, {"recon": recon_avg, "val_psnr": val_psnr}


def refine_decoder(vae: AutoencoderKL, data: WorldTensors, val: WorldTensors, steps: int, batch: int, log: Log, seed: int,
                   lr: float = 1e-3, detail_weight: float = 24.0) -> tuple[AutoencoderKL, dict]:
    """Trains the decoder further on the frozen encoder's latents, its loss weighted harder towards small details.

    The encoder's latents, and so everything trained on them (the UNets), stay valid: only what a latent decodes
    to changes. The joint training leaves the pieces and specks the text probe counts blurred into their
    surroundings; decoder_trial measured the reconstruction passing the probe on 70.1% -> 74.7% of test steps
    in 4000 steps and 78.4% in 8000 at detail weight 24 (docs/results.md)."""
    torch.manual_seed(seed)
    recon_avg = _fit_autoencoder(vae, data, steps, batch, log, seed, lr, detail_weight, 0.0, decoder_only=True, name="decoder")
    with torch.no_grad():
        val_psnr = held_out_psnr(vae, val)
    log(f"refined decoder: held-out PSNR {val_psnr:.2f} dB over {len(val.frames)} frames")
    return vae, {"recon": recon_avg, "val_psnr": val_psnr}


def held_out_psnr(vae: AutoencoderKL, val: WorldTensors) -> float:
    """Mean `roundtrip_psnr` over every frame of `val`, in batches of 256."""
    return float(torch.cat([roundtrip_psnr(vae, to_unit(val.frames[i : i + 256])) for i in range(0, len(val.frames), 256)]).mean())


def roundtrip_psnr(vae: AutoencoderKL, x: torch.Tensor) -> torch.Tensor:
    """Per-frame PSNR of the uint8 round trip, as a user sees it."""
    out = ((vae.decoder(vae.encode(x)[0]) / 2 + 0.5).clamp(0, 1) * 255).round()
    ref = (x / 2 + 0.5) * 255
    mse = ((out - ref) ** 2).mean(dim=(1, 2, 3)).clamp(min=1e-6)
    return 10 * torch.log10(255.0**2 / mse)


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


def train_clip(cfg: StackConfig, data: WorldTensors, token_map: torch.Tensor, steps: int, batch: int, log: Log, seed: int) -> tuple[TextEncoder, ImageEncoder, dict]:
    """CLIP's symmetric InfoNCE on (step text, step image) pairs, identical texts counting as positives,
    plus the same loss between two frames of one recipe.

    Why the second term: in this world the text never names the style, so text-image contrast alone
    teaches the image encoder to discard table and vessel colours, the very thing the fusers must pass
    on from the previous image. Real CLIP keeps such attributes because web captions mention them;
    pairing frames of one recipe (same style, different content) is this world's stand-in.
    """
    torch.manual_seed(seed)
    text_encoder, image_encoder = TextEncoder(cfg.text, token_map), ImageEncoder(cfg.image)
    heads = ClipHeads(cfg.text.width, cfg.image.width)
    params = list(text_encoder.parameters()) + list(image_encoder.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.05)
    g = torch.Generator().manual_seed(seed)
    recipe = recipe_of_frame(data.previous)
    first = torch.nonzero(data.previous < 0).squeeze(1)
    length = torch.bincount(recipe)
    started, loss_avg, style_avg = time.time(), 0.0, 0.0
    for step in range(steps):
        _set_lr(opt, _cosine(step, steps, 5e-4))
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
            log(f"clip step {step}/{steps} text-image {loss_avg:.4f} same-recipe {style_avg:.4f} ({time.time() - started:.0f}s)")
    return text_encoder.eval(), image_encoder.eval(), {"contrastive": loss_avg, "same_recipe": style_avg}


def sd_alphas_cumprod() -> torch.Tensor:
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float32) ** 2
    return torch.cumprod(1 - betas, dim=0)


@torch.no_grad()
def encode_frames(image_encoder: ImageEncoder, frames: torch.Tensor, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen image encoder over uint8 frames in batches: (hidden states, pooled embeddings)."""
    hidden, pooled = zip(*[image_encoder(to_clip(frames[i : i + batch])) for i in range(0, len(frames), batch)])
    return torch.cat(hidden), torch.cat(pooled)


@torch.no_grad()
def encode_all(vae: AutoencoderKL, scaling: float, text_encoder: TextEncoder, image_encoder: ImageEncoder, data: WorldTensors) -> dict:
    """Frozen encoders run once: latents, text encodings per unique text, image encodings per frame."""
    latents = torch.cat([vae.encode(to_unit(data.frames[i : i + 256]))[0] for i in range(0, len(data.frames), 256)]) * scaling
    th, tp = text_encoder(data.text_ids)
    empty_h, empty_p = text_encoder(data.text_ids.new_tensor([[49406] + [49407] * 76]))
    ih, ip = encode_frames(image_encoder, data.frames)
    return {"latents": latents, "text_hidden": th, "text_pooled": tp, "empty_hidden": empty_h, "empty_pooled": empty_p,
            "image_hidden": ih, "image_pooled": ip}


def train_unet(
    cfg: StackConfig,
    data: WorldTensors,
    encoded: dict,
    steps: int,
    batch: int,
    log: Log,
    seed: int,
    unet: UNet | None = None,
    fuser_kind: str = "baseline",
    lr: float = 5e-4,
    text_dropout: float = 0.1,
    image_dropout: float = 0.1,
    style_weight: float = 0.0,
    min_snr_gamma: float = 5.0,
    offset_noise: float = 0.3,
    fuser_lr_scale: float = 2.5,
    change_weight: float = 0.0,
    style_on_unchanged: bool = False,
    data_rank: int = 0,
    sync_gradients: Callable[[list[torch.nn.Parameter]], None] | None = None,
) -> tuple[UNet, torch.nn.Module, dict]:
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

    With `style_on_unchanged` the style term counts only the latent pixels the step leaves as they were
    (`unchanged_mask`): the paper's term compares the whole frame with the previous one, so it also pulls
    against what the step's text adds, and a larger style weight costs text faithfulness (docs/results.md).

    With `change_weight` > 0 the denoising loss also counts the latent pixels where the frame differs from the previous
    one more (`change_weights`), so what the step's text changes is not outweighed by what stays the same.

    The denoising loss is weighted by min(SNR, γ)/SNR (Min-SNR-γ, Hang et al. 2023): nearly clean
    timesteps stop pulling the gradients their way (the paper reports 3.4x faster convergence; not
    measured separately here).
    With `sync_gradients` (data_parallel.average_gradients) several processes train one model, each
    drawing its own batches (`data_rank`) from the same initial weights.
    """
    torch.manual_seed(seed)
    cfg = StackConfig.from_dict({**cfg.to_dict(), "fuser": {**cfg.fuser.__dict__, "kind": fuser_kind}})
    unet = unet if unet is not None else UNet(cfg.unet)
    fuser = build_fuser_for(cfg)
    fuser.start_from_text()
    params = list(unet.parameters()) + list(fuser.parameters())
    # The fuser's image path starts at zero (start_from_text) and has the most to learn.
    opt = torch.optim.AdamW([{"params": list(unet.parameters())}, {"params": list(fuser.parameters()), "lr_scale": fuser_lr_scale}], lr=lr, weight_decay=0.01)
    ema = [p.detach().clone() for p in params]
    acp = sd_alphas_cumprod()
    snr = acp / (1 - acp)
    snr_weight = torch.clamp(snr, max=min_snr_gamma) / snr if min_snr_gamma > 0 else torch.ones_like(snr)
    g = torch.Generator().manual_seed(seed + 1000 * data_rank)
    lat, prev = encoded["latents"], data.previous
    zero_ih = torch.zeros_like(encoded["image_hidden"][:1])
    zero_ip = torch.zeros_like(encoded["image_pooled"][:1])
    started, loss_avg, style_avg = time.time(), 0.0, 0.0
    for step in range(steps):
        _set_lr(opt, _cosine(step, steps, lr))
        idx = torch.randint(len(lat), (batch,), generator=g)
        x0 = lat[idx]
        ti = data.text_index[idx]
        drop_text = torch.rand(batch, generator=g) < text_dropout
        th = torch.where(drop_text[:, None, None], encoded["empty_hidden"], encoded["text_hidden"][ti])
        tp = torch.where(drop_text[:, None], encoded["empty_pooled"], encoded["text_pooled"][ti])
        p = prev[idx]
        has_prev = (p >= 0) & ~(torch.rand(batch, generator=g) < image_dropout)
        safe = p.clamp(min=0)
        prev_lat = lat[safe]  # rows without a previous frame get a stand-in; both terms below mask them out
        ih = torch.where(has_prev[:, None, None], encoded["image_hidden"][safe], zero_ih)
        ip = torch.where(has_prev[:, None], encoded["image_pooled"][safe], zero_ip)
        cond = fuser(th, tp, ih, ip)
        t = torch.randint(0, 1000, (batch,), generator=g)
        a = acp[t].view(-1, 1, 1, 1)
        noise = torch.randn(x0.shape, generator=g) + offset_noise * torch.randn(batch, x0.shape[1], 1, 1, generator=g)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        eps = unet(xt, t, cond)
        squared = (eps - noise) ** 2
        if change_weight > 0:
            squared = squared * change_weights(x0, prev_lat, p >= 0, change_weight)
        loss = (squared.mean(dim=(1, 2, 3)) * snr_weight[t]).mean()
        style = torch.tensor(0.0)
        if style_weight > 0 and bool(has_prev.any()):
            x0_pred = (xt - (1 - a).sqrt() * eps) / a.sqrt()
            if style_on_unchanged:
                fine, coarse = _masked_style_parts(x0_pred, prev_lat, unchanged_mask(x0, prev_lat))
                fine = fine * acp[t]
            else:
                fine = ((x0_pred - prev_lat) ** 2).mean(dim=(1, 2, 3)) * acp[t]
                coarse = ((F.adaptive_avg_pool2d(x0_pred, 4) - F.adaptive_avg_pool2d(prev_lat, 4)) ** 2).mean(dim=(1, 2, 3)).clamp(max=4.0)
            style = ((fine + coarse) * has_prev).sum() / has_prev.sum()
            loss = loss + style_weight * style
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if sync_gradients is not None:
            sync_gradients(params)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            decay = min(0.999, (1 + step) / (10 + step))
            for e, q in zip(ema, params):
                e.mul_(decay).add_(q.detach(), alpha=1 - decay)
        loss_avg = 0.98 * loss_avg + 0.02 * loss.item() if step else loss.item()
        style_avg = 0.98 * style_avg + 0.02 * style.item() if step else style.item()
        if step % 250 == 0 or step == steps - 1:
            log(f"unet[{fuser_kind}] step {step}/{steps} loss {loss_avg:.4f} style {style_avg:.4f} ({time.time() - started:.0f}s)")
    with torch.no_grad():
        for e, q in zip(ema, params):
            q.copy_(e)
    return unet.eval(), fuser.eval(), {"denoise": loss_avg, "style": style_avg}


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
    learns to ignore the text there (docs/results.md: the fusers draw almost none of the whole vegetables).
    First steps (no previous frame) weigh every pixel alike."""
    weights = 1 + strength * _relative_change(x0, previous)
    weights = weights / weights.mean(dim=(2, 3), keepdim=True)
    return torch.where(has_previous.view(-1, 1, 1, 1), weights, torch.ones_like(weights))


# Stage 4's defaults (train_all, finetune_trial). The change weight was chosen on 24 val recipes (docs/results.md): 1
# lifted concatenation's text probe from 35% to 62%. The style weight can differ by fuser (train_all --style-weight
# FUSER=W), but 0.5 serves all: on 48 val recipes at 2000 steps a larger weight bought 3 to 6 style units for 5 to 28
# probe points, while 4000 steps at 0.5 bought attend_to_image and image_pooling 10 to 11 units for 2 to 5 points
# (docs/results.md, "Fine-tuning length and style weight"). The baseline trains without the term (finetune_from_text).
FINETUNE_STYLE_WEIGHTS = dict.fromkeys((kind for kind in FUSER_KINDS if kind != "baseline"), 0.5)
FINETUNE_CHANGE_WEIGHT = 1.0


def style_weights_from(values: list[str]) -> dict[str, float]:
    """Per-fuser style weights from command-line words: a bare number sets every image-conditioned fuser, and
    `fuser=weight` sets one, later words winning; fusers not named keep FINETUNE_STYLE_WEIGHTS."""
    weights = dict(FINETUNE_STYLE_WEIGHTS)
    for value in values:
        kind, _, number = value.rpartition("=")
        if kind and kind not in weights:
            raise ValueError(f"style weight {value!r}: {kind!r} is not an image-conditioned fuser (one of {', '.join(weights)})")
        try:
            weight = float(number)
        except ValueError:
            raise ValueError(f"style weight {value!r}: {number!r} is not a number") from None
        if not 0 <= weight < float("inf"):
            raise ValueError(f"style weight {value!r}: the weight must be a finite number >= 0")
        weights.update({kind: weight} if kind else dict.fromkeys(weights, weight))
    return weights


def finetune_from_text(cfg: StackConfig, data: WorldTensors, encoded: dict, text_unet: dict, kind: str, steps: int, style_weight: float,
                       log: Log, seed: int, change_weight: float = FINETUNE_CHANGE_WEIGHT, style_on_unchanged: bool = True) -> tuple[UNet, torch.nn.Module, dict]:
    """Stage 4: one fuser and a copy of the shared text-only UNet (`text_unet`, its state dict) trained together.

    The baseline never sees the previous image, so the style term could only pull it towards the average previous
    frame (on 24 val recipes its text probe fell from 49.3% before fine-tuning to 42.3%, docs/results.md): it
    trains without it, as the paper's baseline is plain SD.
    """
    unet = UNet(cfg.unet)
    unet.load_state_dict(text_unet)
    return train_unet(cfg, data, encoded, steps, 32, log, seed, unet=unet, fuser_kind=kind, lr=4e-4,
                      style_weight=0.0 if kind == "baseline" else style_weight, change_weight=change_weight,
                      style_on_unchanged=style_on_unchanged)
