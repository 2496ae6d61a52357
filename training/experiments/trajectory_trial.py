"""Where along the sampling trajectory does a bundle lose the step's new ingredient?

Finds where along the 50-step sampling trajectory a trained bundle loses the step's new ingredient.

    cd training && /usr/bin/python3 -m experiments.trajectory_trial --fuser baseline
    cd training && /usr/bin/python3 -m experiments.trajectory_trial --runs /tmp/other_runs --guidance 3 7.5 12

For each probed step of the first --recipes val recipes it noises the reference frame's latent to the
schedule's timestep at each --start index (0: plain sampling from pure noise, as the service does; 49: the last
step only) and samples the rest of the bundle's DDPM schedule from there, then prints the text probe on the
decoded frames. Plain sampling that fails where a late start passes means the ingredient is lost while the
layout forms (high noise); a late start that already fails means the denoiser blurs it at low noise. Image-
conditioned fusers see the reference previous frame, so each step is scored on its own, not after a generated
chain. --guidance repeats the whole sweep at other text guidance scales (image guidance stays the bundle's).
One thread, so two trials (say two --runs folders) can run side by side.
"""
from __future__ import annotations

from stepframe_train.pipeline import threads  # noqa: F401  (before torch: one thread, so two experiments run side by side)

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from stepframe_train.config import default_stack
from stepframe_train.export import REPO
from stepframe_train.models.fusers import FUSER_KINDS
from stepframe_train.reference_sampler import GUIDANCE_ROWS, DiscreteScheduler, guided_eps
from stepframe_train.world.metrics import probe_target, text_probe
from stepframe_train.world.recipes import split
from stepframe_train.world.render import render_recipe
from stepframe_train.pipeline.evaluate import decode_latents, encode_frames
from stepframe_train.pipeline.checkpoints import first_stage_checkpoints, sampler_settings, trained_config, trained_sampler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=REPO / "training" / "runs")
    parser.add_argument("--fuser", choices=FUSER_KINDS, default="baseline")
    parser.add_argument("--recipes", type=int, default=24, help="validation recipes to probe")
    parser.add_argument("--start", type=int, nargs="+", default=[0, 12, 25, 37, 45, 48], help="indices into the 50-step schedule")
    parser.add_argument("--guidance", type=float, nargs="+", default=None, help="text guidance scales (default: the bundle's)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = trained_config(default_stack(args.fuser), first_stage_checkpoints(args.runs)[0])
    sampler, spec, vae = trained_sampler(cfg, args.runs, args.fuser)
    settings = sampler_settings(spec)
    mode = sampler.guidance_mode(settings)
    rows = GUIDANCE_ROWS[mode]

    recipes, steps, references, previous = [], [], [], []
    for recipe in split("val")[: args.recipes]:
        frames = render_recipe(recipe)
        for i, step in enumerate(recipe.steps[1:], start=1):
            if probe_target(recipe, step) is not None:
                recipes.append(recipe), steps.append(step), references.append(frames[i]), previous.append(frames[i - 1])

    scaling = cfg.vae.scaling_factor
    with torch.no_grad():
        z0 = encode_frames(vae, np.stack(references), scaling)
        recon = decode_latents(vae, z0, scaling)
        showable = [text_probe(r, s, x, x) for r, s, x in zip(recipes, steps, recon)]
        per_step = [sampler.conditioning(s.text, torch.from_numpy(p).permute(2, 0, 1).contiguous(), mode) for s, p in zip(steps, previous)]
        cond = torch.cat([torch.cat([c[r : r + 1] for c in per_step]) for r in range(rows)])
        n = len(steps)
        print(f"{args.fuser} in {args.runs}: {n} probed val steps, {sum(showable)} the reconstruction passes")
        for guidance in args.guidance or [settings.guidance_scale]:
            guided = dataclasses.replace(settings, guidance_scale=guidance)
            for start in args.start:
                scheduler = DiscreteScheduler(settings.scheduler, settings.num_inference_steps)
                generator = torch.Generator().manual_seed(settings.seed)
                noise = torch.randn(z0.shape, generator=generator)
                a = scheduler.acp[scheduler.timesteps[start]]
                x = noise if start == 0 else a.sqrt() * z0 + (1 - a).sqrt() * noise
                for i in range(start, len(scheduler.timesteps)):
                    t = scheduler.timesteps[i]
                    out = sampler.unet(x.repeat(rows, 1, 1, 1), torch.full((rows * n,), t, dtype=torch.int64), cond).split(n)
                    x = scheduler.step(guided_eps(out, mode, guided), i, x, generator)
                passed = [text_probe(r, s, g, c) for r, s, g, c in zip(recipes, steps, decode_latents(vae, x, scaling), recon)]
                on_showable = [p for p, ok in zip(passed, showable) if ok]
                origin = "pure noise" if start == 0 else f"reference noised to t={scheduler.timesteps[start]}"
                print(f"guidance {guidance:g}, from {origin} ({len(scheduler.timesteps) - start} steps): text probe {np.mean(passed):.1%}, "
                      f"{np.mean(on_showable):.1%} on steps the reconstruction passes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
