"""Stages 1a and 5: the KL autoencoder, and the decoder refined alone on the frozen encoder's latents."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ..config import StackConfig
from ..models.vae import AutoencoderKL
from .data import WorldTensors, to_unit
from .schedules import cosine_lr, set_lr
from .settings import AutoencoderStage, DecoderStage
from .log import Log


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


def _fit_autoencoder(vae: AutoencoderKL, data: WorldTensors, stage: AutoencoderStage | DecoderStage, log: Log, kl_weight: float,
                     decoder_only: bool, name: str) -> float:
    """The training loop of `train_vae` (everything) and `refine_decoder` (the decoder, on the frozen encoder's
    posterior samples); returns the reconstruction loss's moving average at the last step."""
    vae.encoder.requires_grad_(not decoder_only)
    opt = torch.optim.AdamW(vae.decoder.parameters() if decoder_only else vae.parameters(), lr=stage.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(stage.seed)
    started, recon_avg = time.time(), 0.0
    for step in range(stage.steps):
        set_lr(opt, cosine_lr(step, stage.steps, stage.lr))
        x = to_unit(data.frames[torch.randint(len(data.frames), (stage.batch,), generator=g)])
        with torch.set_grad_enabled(not decoder_only):
            mean, logvar = vae.encode(x)
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        kl = 0.5 * torch.mean(mean**2 + logvar.exp() - 1 - logvar)
        recon_loss = reconstruction_loss(vae.decoder(z), x, stage.detail_weight)
        loss = recon_loss + kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        recon_avg = 0.98 * recon_avg + 0.02 * recon_loss.item() if step else recon_loss.item()
        if step % 250 == 0 or step == stage.steps - 1:
            elapsed = time.time() - started
            log(f"{name} step {step}/{stage.steps} recon {recon_avg:.4f} kl {kl.item():.3f} ({elapsed:.0f}s, {elapsed / (step + 1):.3f} s/step)")
    vae.eval()
    return recon_avg


def train_vae(cfg: StackConfig, data: WorldTensors, val: WorldTensors, stage: AutoencoderStage, log: Log) -> tuple[AutoencoderKL, float, dict]:
    """L1 + L2 reconstruction, weighted towards small details (`detail_weights`), with a small KL term (SD's 1e-6 by
    default); returns the model, its scaling factor and final losses (with the PSNR of held-out `val` frames)."""
    torch.manual_seed(stage.seed)
    vae = AutoencoderKL(cfg.vae)
    recon_avg = _fit_autoencoder(vae, data, stage, log, stage.kl_weight, decoder_only=False, name="vae")
    with torch.no_grad():
        means = torch.cat([vae.encode(to_unit(data.frames[i : i + 256]))[0] for i in range(0, min(len(data.frames), 4096), 256)])
        val_psnr = held_out_psnr(vae, val)
    scaling = float(1.0 / means.std())
    log(f"vae held-out PSNR {val_psnr:.2f} dB over {len(val.frames)} frames")
    return vae, scaling, {"recon": recon_avg, "val_psnr": val_psnr}


def refine_decoder(vae: AutoencoderKL, data: WorldTensors, val: WorldTensors, stage: DecoderStage, log: Log) -> tuple[AutoencoderKL, dict]:
    """Trains the decoder further on the frozen encoder's latents, its loss weighted harder towards small details.

    The encoder's latents, and so everything trained on them (the UNets), stay valid: only what a latent decodes
    to changes. The joint training leaves the pieces and specks the text probe counts blurred into their
    surroundings; experiments/decoder_trial measured the reconstruction passing the probe on 70.1% -> 74.7% of test
    steps in 4000 steps and 78.4% in 8000 at detail weight 24 (docs/experiments.md)."""
    torch.manual_seed(stage.seed)
    recon_avg = _fit_autoencoder(vae, data, stage, log, 0.0, decoder_only=True, name="decoder")
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
