"""The paper's fine-tuning on real checkpoints: the UNet and a fuser train together on the denoising
loss plus the L2 style-consistency term; the text encoder, image encoder and VAE stay frozen.

    npm run sd:finetune -- --base SD_DIR --image-encoder CLIP_DIR --data SPLIT_DIR --fuser KIND --out RUN_DIR [...]

Each row is one step of a sequence: its text, its image (the target), and the previous step's image
as the conditioning, as the server feeds the previous frame. Text and image are dropped together
with probability --cond-dropout, which is what classifier-free guidance's unconditional row (empty
prompt, zero image embeddings) needs. RUN_DIR/checkpoint.pt is rewritten every --save-every steps
and at the end; running the same command again resumes from it.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..clip_tokenizer import ClipTokenizer
from ..models.fusers import FUSER_KINDS
from ..pipeline.denoising import sd_alphas_cumprod, style_parts
from .data import Row, clip_pixels, read_split, vae_pixels
from .folders import ClipVision, StableDiffusion, load_clip_vision, load_stable_diffusion
from .run_checkpoint import load_optimizer, load_run, save_run
from .stack import FuserShape, fuser_shape, pad_token_id, pooled_image, tokenize

TRAIN_UNET = ("all", "attention", "none")
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class FinetuneSettings:
    fuser: str
    steps: int = 1000
    batch: int = 1
    grad_accum: int = 1
    lr: float = 1e-5
    fuser_lr: float = 1e-4
    style_weight: float = 0.1
    cond_dropout: float = 0.1
    seed: int = 0
    resolution: int = 0  # 0: the base model's
    train_unet: str = "all"
    precision: str = "fp32"
    gradient_checkpointing: bool = False
    device: str = "cpu"
    save_every: int = 500
    log_every: int = 10


class Trainer:
    """One run: the frozen encoders and VAE, the trainable UNet parameters and fuser, and the optimiser."""

    def __init__(self, sd: StableDiffusion, vision: ClipVision | None, rows: list[Row], s: FinetuneSettings):
        self.sd, self.vision, self.rows, self.s = sd, vision, rows, s
        self.device = torch.device(s.device)
        self.resolution = s.resolution or sd.image_size
        factor = sd.vae.config.downscale * 2 ** (len(sd.unet.config.block_out_channels) - 1)
        if self.resolution % factor:
            raise ValueError(f"--resolution {self.resolution} must be a multiple of {factor} (the VAE's and UNet's downsampling)")
        self.shape: FuserShape = fuser_shape(s.fuser, sd, vision)
        self.fuser = self.shape.build()
        self.fuser.start_from_text()  # starts as the base model: the fused conditioning equals the text's
        for module in (sd.text_encoder, sd.vae, *( [vision.model] if vision else [])):
            module.requires_grad_(False).eval().to(self.device)
        sd.unet.to(self.device)
        self.fuser.to(self.device)
        self.unet_params = self._trainable_unet_parameters()
        sd.unet.set_gradient_checkpointing(s.gradient_checkpointing)
        groups = [{"params": list(self.fuser.parameters()), "lr": s.fuser_lr}]
        if self.unet_params:
            groups.append({"params": list(self.unet_params.values()), "lr": s.lr})
        self.optimizer = torch.optim.AdamW(groups, weight_decay=1e-2)
        self.tokenizer = ClipTokenizer.load(sd.tokenizer_dir)
        self.pad_id = pad_token_id(sd.tokenizer_dir)
        self.acp = sd_alphas_cumprod().to(self.device)
        self.scaling = sd.vae.config.scaling_factor
        self.scaler = torch.cuda.amp.GradScaler() if s.precision == "fp16" else None
        self._empty: tuple[torch.Tensor, torch.Tensor] | None = None
        self.step = 0

    def _trainable_unet_parameters(self) -> dict[str, torch.nn.Parameter]:
        unet = self.sd.unet
        unet.requires_grad_(False)
        if self.s.train_unet == "none":
            return {}
        chosen = {n: p for n, p in unet.named_parameters() if self.s.train_unet == "all" or ".attentions." in n}
        for p in chosen.values():
            p.requires_grad_(True)
        unet.train()
        return chosen

    def _autocast(self):
        if self.s.precision == "fp32":
            return nullcontext()
        dtype = torch.bfloat16 if self.s.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    @torch.no_grad()
    def _encode(self, rows: list[Row]):
        """Frozen encoders: text (hidden, pooled), previous image (hidden, pooled), target and previous latents."""
        ids = tokenize(self.tokenizer, [r.text for r in rows], self.pad_id).to(self.device)
        text_hidden, text_pooled, _ = self.sd.text_encoder(ids)
        targets = torch.stack([vae_pixels(r.image, self.resolution) for r in rows]).to(self.device)
        has_previous = torch.tensor([r.previous is not None for r in rows], device=self.device)
        previous = torch.stack([vae_pixels(r.previous or r.image, self.resolution) for r in rows]).to(self.device)
        with self._autocast():
            latents = self.sd.vae.encode_mean(targets).float() * self.scaling
            previous_latents = self.sd.vae.encode_mean(previous).float() * self.scaling
        if self.vision is not None:
            pixels = torch.stack([clip_pixels(r.previous or r.image, self.vision.preprocessor_config) for r in rows]).to(self.device)
            outputs = self.vision.model(pixels)
            image_hidden, image_pooled = outputs[0], pooled_image(outputs)
        else:
            image_hidden = torch.zeros(len(rows), self.shape.image_tokens, self.shape.image_dim, device=self.device)
            image_pooled = torch.zeros(len(rows), self.shape.image_pooled_dim, device=self.device)
        return text_hidden, text_pooled, image_hidden, image_pooled, latents, previous_latents, has_previous

    @torch.no_grad()
    def _empty_prompt(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The empty prompt's encoding (the unconditional text), computed once: the text encoder is frozen."""
        if self._empty is None:
            hidden, pooled, _ = self.sd.text_encoder(tokenize(self.tokenizer, [""], self.pad_id).to(self.device))
            self._empty = (hidden, pooled)
        return self._empty

    def _loss(self, rows: list[Row], g: torch.Generator) -> tuple[torch.Tensor, float, float]:
        text_hidden, text_pooled, image_hidden, image_pooled, x0, previous, has_previous = self._encode(rows)
        b = len(rows)
        drop = torch.rand(b, generator=g).to(self.device) < self.s.cond_dropout
        if drop.any():
            empty_hidden, empty_pooled = self._empty_prompt()
            text_hidden = torch.where(drop[:, None, None], empty_hidden, text_hidden)
            text_pooled = torch.where(drop[:, None], empty_pooled, text_pooled)
        # No previous image (a first step) or a dropped one: zero embeddings, as the bundle's `zeros` conditioning.
        given = has_previous & ~drop
        image_hidden = image_hidden * given[:, None, None]
        image_pooled = image_pooled * given[:, None]
        t = torch.randint(0, self.acp.numel(), (b,), generator=g).to(self.device)
        noise = torch.randn(x0.shape, generator=g).to(self.device)
        a = self.acp[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        with self._autocast():
            cond = self.fuser(text_hidden, text_pooled, image_hidden, image_pooled)
            eps = self.sd.unet(xt, t, cond)
        eps = eps.float()
        denoise = F.mse_loss(eps, noise)
        style = torch.zeros((), device=self.device)
        if self.s.style_weight > 0 and bool(given.any()):
            x0_pred = (xt - (1 - a).sqrt() * eps) / a.sqrt()
            fine, coarse = style_parts(x0_pred, previous, self.acp[t])
            style = ((fine + coarse) * given).sum() / given.sum()
        return denoise + self.s.style_weight * style, denoise.item(), style.item()

    def train_step(self, g: torch.Generator, pick: random.Random) -> dict[str, float]:
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        totals = {"loss": 0.0, "denoise": 0.0, "style": 0.0}
        for _ in range(self.s.grad_accum):
            rows = [self.rows[pick.randrange(len(self.rows))] for _ in range(self.s.batch)]
            loss, denoise, style = self._loss(rows, g)
            scaled = loss / self.s.grad_accum
            (self.scaler.scale(scaled) if self.scaler else scaled).backward()
            for key, value in (("loss", loss.item()), ("denoise", denoise), ("style", style)):
                totals[key] += value / self.s.grad_accum
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return totals

    def save(self, run_dir: Path, losses: dict[str, float], pick: random.Random, g: torch.Generator) -> Path:
        return save_run(run_dir, step=self.step, shape=self.shape, fuser=self.fuser,
                        unet_state={n: p.detach().cpu() for n, p in self.unet_params.items()}, train_unet=self.s.train_unet,
                        optimizer=self.optimizer.state_dict(), settings=asdict(self.s), losses=losses,
                        rng={"torch": g.get_state(), "python": pick.getstate()})

    def resume(self, run_dir: Path, g: torch.Generator, pick: random.Random) -> None:
        run = load_run(run_dir)
        saved = FinetuneSettings(**run["settings"])
        for key in ("fuser", "train_unet", "resolution"):
            if getattr(saved, key) != getattr(self.s, key):
                raise ValueError(f"{run_dir} was started with --{key.replace('_', '-')} {getattr(saved, key)}, not {getattr(self.s, key)}: "
                                 "use another --out, or the same settings")
        self.fuser.load_state_dict(run["fuser"])
        with torch.no_grad():
            for name, tensor in run["unet"].items():
                self.unet_params[name].copy_(tensor)
        self.optimizer.load_state_dict(load_optimizer(run_dir, run["step"]))
        self.step = run["step"]
        g.set_state(run["rng"]["torch"])
        pick.setstate(run["rng"]["python"])


def finetune(base: Path, image_encoder: Path | None, data: Path, out: Path, s: FinetuneSettings, log=print) -> Path:
    if s.fuser not in FUSER_KINDS:
        raise ValueError(f"--fuser {s.fuser!r}: expected one of {', '.join(FUSER_KINDS)}")
    if s.train_unet not in TRAIN_UNET:
        raise ValueError(f"--train-unet {s.train_unet!r}: expected one of {', '.join(TRAIN_UNET)}")
    if s.precision not in PRECISIONS:
        raise ValueError(f"--precision {s.precision!r}: expected one of {', '.join(PRECISIONS)}")
    if s.precision == "fp16" and not s.device.startswith("cuda"):
        raise ValueError("--precision fp16 needs --device cuda (CPU autocast runs bf16 only)")
    if s.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {s.device}: torch sees no CUDA device here")
    if s.fuser != "baseline" and image_encoder is None:
        raise ValueError(f"--fuser {s.fuser} conditions on the previous image: give --image-encoder")
    torch.manual_seed(s.seed)
    sd = load_stable_diffusion(base)
    vision = load_clip_vision(image_encoder) if s.fuser != "baseline" else None
    rows = read_split(data)
    trainer = Trainer(sd, vision, rows, s)
    g, pick = torch.Generator().manual_seed(s.seed), random.Random(s.seed)
    if (out / "checkpoint.pt").exists():
        trainer.resume(out, g, pick)
        log(f"resumed {out} at step {trainer.step}/{s.steps}")
    trainable = sum(p.numel() for p in trainer.unet_params.values()) + sum(p.numel() for p in trainer.fuser.parameters())
    log(f"fine-tuning {s.fuser} on {len(rows)} rows at {trainer.resolution}px: {trainable / 1e6:.1f}M trainable parameters "
        f"(UNet: {s.train_unet}), {s.precision} on {s.device}")
    started, averages = time.time(), {"loss": 0.0, "denoise": 0.0, "style": 0.0}
    first = trainer.step
    while trainer.step < s.steps:
        losses = trainer.train_step(g, pick)
        n = trainer.step - first
        averages = {k: v if n == 1 else 0.9 * averages[k] + 0.1 * v for k, v in losses.items()}
        if trainer.step % s.log_every == 0 or trainer.step == s.steps:
            log(f"step {trainer.step}/{s.steps} loss {averages['loss']:.4f} (denoise {averages['denoise']:.4f}, style {averages['style']:.4f}) "
                f"{(time.time() - started) / n:.2f}s/step")
        if trainer.step % s.save_every == 0 or trainer.step == s.steps:
            trainer.save(out, averages, pick, g)
    log(f"{out}/checkpoint.pt at step {trainer.step}")
    return out


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, FinetuneSettings]:
    p = argparse.ArgumentParser(prog="npm run sd:finetune --", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", type=Path, required=True, help="diffusers Stable Diffusion folder")
    p.add_argument("--image-encoder", type=Path, help="transformers CLIP vision folder (every fuser but baseline)")
    p.add_argument("--data", type=Path, required=True, help="split folder: recipes.json and images (the layout `stepframe eval` reads)")
    p.add_argument("--fuser", required=True, choices=FUSER_KINDS)
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoint.pt; resumed when present)")
    d = FinetuneSettings(fuser="baseline")
    p.add_argument("--device", default=d.device, help="cpu or cuda[:N]")
    p.add_argument("--precision", default=d.precision, choices=PRECISIONS, help="autocast dtype over fp32 master weights")
    p.add_argument("--gradient-checkpointing", action="store_true", help="recompute UNet activations in the backward pass")
    p.add_argument("--train-unet", default=d.train_unet, choices=TRAIN_UNET, help="UNet parameters that train (the fuser always does)")
    for name, kind in (("steps", int), ("batch", int), ("grad-accum", int), ("lr", float), ("fuser-lr", float), ("style-weight", float),
                       ("cond-dropout", float), ("seed", int), ("resolution", int), ("save-every", int), ("log-every", int)):
        p.add_argument(f"--{name}", type=kind, default=getattr(d, name.replace("-", "_")))
    args = p.parse_args(argv)
    for name in ("steps", "batch", "grad_accum", "save_every", "log_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    settings = FinetuneSettings(**{k: getattr(args, k) for k in FinetuneSettings.__dataclass_fields__})
    return args, settings


def main(argv: list[str] | None = None) -> int:
    args, settings = parse_args(argv)
    try:
        finetune(args.base, args.image_encoder, args.data, args.out, settings, log=lambda m: print(m, flush=True))
    except (ValueError, FileNotFoundError) as error:
        print(f"sd:finetune: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
