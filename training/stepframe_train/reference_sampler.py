"""The PyTorch reference sampler: the same sequence loop as the TypeScript engine, on the same weights.

It is the peer the engine is benchmarked against (bench/engineBench.ts) and what evaluation uses
to score trained bundles. DDPM and DDIM follow diffusers' equations (see scheduler_reference/).

    /usr/bin/python3 -m stepframe_train.reference_sampler --random --preset default --bundle attend_to_image \
        --steps "chop the carrots" "add the carrots to the pan" --repeats 3
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from .bundle import BundleSpec
from .clip_tokenizer import ClipTokenizer
from .export import DEFAULT_TOKENIZER, random_bundles
from .manifest import SD1_SCHEDULER_CONFIG
from .models.fusers import FUSER_KINDS
from .stack import Stack
from .pipeline.data import to_clip


@dataclass
class SamplerSettings:
    num_inference_steps: int = 50
    guidance_scale: float = 7.5
    image_guidance_scale: float | None = None
    scheduler: str = "ddpm"
    seed: int = 0


class DiscreteScheduler:
    """DDPM (fixed_small variance) and DDIM (eta 0) over SD 1.x's schedule with leading spacing."""

    def __init__(self, kind: str, steps: int, cfg: dict = SD1_SCHEDULER_CONFIG):
        T = cfg["num_train_timesteps"]
        betas = torch.linspace(cfg["beta_start"] ** 0.5, cfg["beta_end"] ** 0.5, T, dtype=torch.float32) ** 2
        self.acp = torch.cumprod(1.0 - betas, dim=0)
        ratio = T // steps
        self.timesteps = [int(t) for t in (np.arange(0, steps) * ratio)[::-1] + cfg["steps_offset"]]
        self.kind, self.ratio = kind, ratio

    def step(self, eps: torch.Tensor, i: int, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        t = self.timesteps[i]
        if self.kind == "ddim":
            prev_t = t - self.ratio
            a_prev = self.acp[prev_t] if prev_t >= 0 else self.acp[0]
        else:
            prev_t = self.timesteps[i + 1] if i + 1 < len(self.timesteps) else -1
            a_prev = self.acp[prev_t] if prev_t >= 0 else torch.tensor(1.0)
        a_t = self.acp[t]
        x0 = (x - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
        if self.kind == "ddim":
            return a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps
        cur_a = a_t / a_prev
        prev = (a_prev ** 0.5 * (1 - cur_a) / (1 - a_t)) * x0 + (cur_a ** 0.5 * (1 - a_prev) / (1 - a_t)) * x
        if t > 0:
            var = torch.clamp((1 - a_prev) / (1 - a_t) * (1 - cur_a), min=1e-20)
            prev = prev + var ** 0.5 * torch.randn(x.shape, generator=generator)
        return prev


# UNet rows per guidance mode: conditional; + unconditional text; + unconditional text and image (InstructPix2Pix).
GUIDANCE_ROWS = {"none": 1, "text": 2, "text_and_image": 3}


def guided_eps(out: tuple[torch.Tensor, ...], mode: str, settings: SamplerSettings) -> torch.Tensor:
    """Classifier-free guidance over the UNet's rows, in the order `ReferenceSampler.conditioning` stacks them."""
    if mode == "none":
        return out[0]
    if mode == "text":
        return out[1] + settings.guidance_scale * (out[0] - out[1])
    s_i = settings.image_guidance_scale
    return out[2] + s_i * (out[1] - out[2]) + settings.guidance_scale * (out[0] - out[1])


class ReferenceSampler:
    """One bundle's models in PyTorch; `sample_sequence` mirrors src/pipeline/sequenceLoop.ts."""

    def __init__(self, shared: Stack, spec: BundleSpec, tokenizer: ClipTokenizer, image_guidance: bool = False):
        self.cfg = shared.config
        self.text_encoder = shared.text_encoder.eval()
        self.image_encoder = shared.image_encoder.eval()
        self.vae = shared.vae.eval()
        self.unet = spec.unet.eval()
        self.fuser = spec.fuser.eval()
        self.kind = spec.fuser_kind
        self.tokenizer = tokenizer
        self.image_guidance = image_guidance

    def encode_text(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.tensor([self.tokenizer.encode_padded(t) for t in texts], dtype=torch.int64)
        return self.text_encoder(ids)

    def encode_image(self, frame: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """`frame` is uint8 [3, H, W] at the crop size (the engine's decoded frames), or None for "no previous image"."""
        if frame is None:
            return torch.zeros(1, self.cfg.image.tokens, self.cfg.image.width), torch.zeros(1, self.cfg.image.width)
        return self.image_encoder(to_clip(frame[None]))

    def conditioning(self, text: str, frame: torch.Tensor | None, mode: str, first_frame: torch.Tensor | None = None) -> torch.Tensor:
        """`first_frame` (the sequence's first frame; None: `frame` is it) reaches only fusers that take it."""
        texts = [text] + ([""] if mode != "none" else []) + ([""] if mode == "text_and_image" else [])
        th, tp = self.encode_text(texts)
        if self.kind == "baseline":
            return th

        def rows(frame_or_none: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
            given, none = self.encode_image(frame_or_none), self.encode_image(None)
            chosen = {"none": [given], "text": [given, none], "text_and_image": [given, given, none]}[mode]
            return torch.cat([h for h, _ in chosen]), torch.cat([p for _, p in chosen])

        if self.fuser.uses_first_frame:
            return self.fuser(th, tp, *rows(frame), *rows(frame if first_frame is None else first_frame))
        return self.fuser(th, tp, *rows(frame))

    def guidance_mode(self, settings: SamplerSettings) -> str:
        """Which rows `settings` asks of this bundle: a key of GUIDANCE_ROWS."""
        if settings.guidance_scale <= 1:
            return "none"
        if self.image_guidance and self.kind != "baseline" and settings.image_guidance_scale is not None:
            return "text_and_image"
        return "text"

    @torch.no_grad()
    def sample_sequence(self, steps: list[str], settings: SamplerSettings, init_frame: torch.Tensor | None = None) -> list[torch.Tensor]:
        """uint8 [3, H, W] frames, one per step, each conditioned on the one before."""
        mode = self.guidance_mode(settings)
        rows = GUIDANCE_ROWS[mode]
        latent = self.cfg.image.image_size // self.cfg.vae.downscale
        frames, previous, first = [], init_frame, init_frame
        for index, text in enumerate(steps):
            generator = torch.Generator().manual_seed(settings.seed * 1000 + index)
            cond = self.conditioning(text, previous, mode, first)
            scheduler = DiscreteScheduler(settings.scheduler, settings.num_inference_steps)
            x = torch.randn(1, self.cfg.vae.latent_channels, latent, latent, generator=generator)
            for i, t in enumerate(scheduler.timesteps):
                out = self.unet(x.expand(rows, -1, -1, -1), torch.full((rows,), t, dtype=torch.int64), cond)
                x = scheduler.step(guided_eps(out.split(1), mode, settings), i, x, generator)
            image = self.vae.decoder(x / self.cfg.vae.scaling_factor)[0]
            frame = ((image / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
            frames.append(frame)
            previous = frame
            first = frame if first is None else first
        return frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Seeded random weights of the benchmark's size (the bench's PyTorch peer); trained bundles are timed through the engine.
    parser.add_argument("--random", action="store_true", required=True)
    parser.add_argument("--seed", type=int, default=7, help="weights seed for --random")
    parser.add_argument("--preset", choices=("tiny", "default"), default="default")
    parser.add_argument("--bundle", default="attend_to_image", choices=FUSER_KINDS)
    parser.add_argument("--steps", nargs="+", default=["chop the carrots", "add the carrots to the pan", "stir everything together", "bake it"])
    parser.add_argument("--num-inference-steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    shared, specs = random_bundles(args.seed, args.preset, (args.bundle,), DEFAULT_TOKENIZER)
    sampler = ReferenceSampler(shared, specs[0], ClipTokenizer.load(DEFAULT_TOKENIZER))
    settings = SamplerSettings(num_inference_steps=args.num_inference_steps)
    seconds = []
    for _ in range(args.repeats + 1):  # the first run warms up
        started = time.perf_counter()
        sampler.sample_sequence(args.steps, settings)
        seconds.append(time.perf_counter() - started)
    timed = sorted(seconds[1:])
    print(json.dumps({"bundle": args.bundle, "steps": len(args.steps), "num_inference_steps": args.num_inference_steps,
                      "threads": args.threads, "seconds_per_sequence": timed, "median_s": timed[len(timed) // 2]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
