"""Reference numbers for the TypeScript schedulers, computed with diffusers' equations in float32 torch.

diffusers itself cannot be installed here, so each step below restates the corresponding
`scheduling_*.py` step function for prediction_type "epsilon" with SD 1.x's config. The fixture
records, per scheduler and timestep spacing, the timesteps, init_noise_sigma and every
intermediate sample of a full loop driven by a dummy model (as diffusers' own tests do), with the
noise each stochastic step consumed.

    /usr/bin/python3 -m stepframe_train.scheduler_reference --out ../test/fixtures/schedulers.json
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from .manifest import SD1_SCHEDULER_CONFIG

T = 1000


def alphas_cumprod(cfg: dict) -> torch.Tensor:
    betas = torch.linspace(cfg["beta_start"] ** 0.5, cfg["beta_end"] ** 0.5, T, dtype=torch.float32) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def discrete_timesteps(spacing: str, n: int, offset: int) -> np.ndarray:
    if spacing == "linspace":
        return np.linspace(0, T - 1, n).round()[::-1].copy().astype(np.int64)
    if spacing == "leading":
        ratio = T // n
        return (np.arange(0, n) * ratio).round()[::-1].copy().astype(np.int64) + offset
    return np.round(np.arange(T, 0, -T / n)).astype(np.int64) - 1


def continuous_timesteps(spacing: str, n: int, offset: int) -> np.ndarray:
    if spacing == "linspace":
        return np.linspace(0, T - 1, n, dtype=np.float32)[::-1].copy()
    if spacing == "leading":
        ratio = T // n
        return (np.arange(0, n) * ratio).round()[::-1].copy().astype(np.float32) + offset
    return (np.arange(T, 0, -T / n)).round().copy().astype(np.float32) - 1


def dpm_timesteps(spacing: str, n: int, offset: int) -> np.ndarray:
    if spacing == "linspace":
        return np.linspace(0, T - 1, n + 1).round()[::-1][:-1].copy().astype(np.int64)
    if spacing == "leading":
        ratio = T // (n + 1)
        return (np.arange(0, n + 1) * ratio).round()[::-1][:-1].copy().astype(np.int64) + offset
    return np.arange(T, 0, -T / n).round().copy().astype(np.int64) - 1


def dummy_model(sample: torch.Tensor, t: float) -> torch.Tensor:
    """A smooth, timestep-dependent stand-in for the UNet."""
    return torch.tanh(sample) * 0.9 + 0.1 * math.cos(float(t) / 100.0)


def run_ddpm(acp, ts, sample, gen):
    steps = []
    for i, t in enumerate(ts):
        eps = dummy_model(sample, t)
        prev_t = ts[i + 1] if i + 1 < len(ts) else -1
        a_t = acp[t]
        a_prev = acp[prev_t] if prev_t >= 0 else torch.tensor(1.0)
        b_t, b_prev = 1 - a_t, 1 - a_prev
        cur_a = a_t / a_prev
        cur_b = 1 - cur_a
        x0 = (sample - b_t ** 0.5 * eps) / a_t ** 0.5
        prev = (a_prev ** 0.5 * cur_b / b_t) * x0 + (cur_a ** 0.5 * b_prev / b_t) * sample
        noise = None
        if t > 0:
            noise = torch.randn(sample.shape, generator=gen)
            var = torch.clamp(b_prev / b_t * cur_b, min=1e-20)
            prev = prev + var ** 0.5 * noise
        steps.append((prev, noise))
        sample = prev
    return steps


def run_ddim(acp, ts, sample, gen, eta, n):
    steps = []
    for t in ts:
        eps = dummy_model(sample, t)
        prev_t = t - T // n
        a_t = acp[t]
        a_prev = acp[prev_t] if prev_t >= 0 else acp[0]  # set_alpha_to_one = False
        x0 = (sample - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
        var = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)
        std = eta * var ** 0.5
        prev = a_prev ** 0.5 * x0 + (1 - a_prev - std ** 2) ** 0.5 * eps
        noise = None
        if eta > 0:
            noise = torch.randn(sample.shape, generator=gen)
            prev = prev + std * noise
        steps.append((prev, noise))
        sample = prev
    return steps


def sigmas_for(acp, ts):
    table = ((1 - acp) / acp) ** 0.5
    s = np.interp(ts, np.arange(0, len(table)), table.numpy())
    return np.concatenate([s, [0.0]]).astype(np.float32)


def run_euler(acp, ts, sample, gen, ancestral):
    sig = torch.from_numpy(sigmas_for(acp, ts))
    steps = []
    for i, t in enumerate(ts):
        s = sig[i]
        eps = dummy_model(sample / (s ** 2 + 1) ** 0.5, t)
        x0 = sample - s * eps
        deriv = (sample - x0) / s
        noise = None
        if ancestral:
            s_to = sig[i + 1]
            up = (s_to ** 2 * (s ** 2 - s_to ** 2) / s ** 2) ** 0.5
            down = (s_to ** 2 - up ** 2) ** 0.5
            prev = sample + deriv * (down - s)
            noise = torch.randn(sample.shape, generator=gen)
            prev = prev + noise * up
        else:
            prev = sample + deriv * (sig[i + 1] - s)
        steps.append((prev, noise))
        sample = prev
    return steps


def run_dpmpp_2m(acp, ts, sample):
    sig = torch.from_numpy(sigmas_for(acp, ts)).double()
    alpha = lambda s: 1 / (s ** 2 + 1) ** 0.5  # noqa: E731
    lam = lambda s: torch.log(alpha(s)) - torch.log(s * alpha(s))  # noqa: E731
    prev_x0 = None
    steps = []
    for i, t in enumerate(ts):
        eps = dummy_model(sample, t)
        s = sig[i]
        x0 = (sample - s * alpha(s) * eps) / alpha(s)
        s_next = sig[i + 1]
        last = i == len(ts) - 1
        if s_next == 0:
            prev = x0
        else:
            h = lam(s_next) - lam(s)
            ratio = (s_next * alpha(s_next)) / (s * alpha(s))
            coeff = alpha(s_next) * (torch.exp(-h) - 1)
            if prev_x0 is None or last:
                prev = ratio * sample - coeff * x0
            else:
                r0 = (lam(s) - lam(sig[i - 1])) / h
                prev = ratio * sample - coeff * x0 - 0.5 * coeff * (x0 - prev_x0) / r0
        prev = prev.float()
        prev_x0 = x0
        steps.append((prev, None))
        sample = prev
    return steps


def build(n_steps: int = 12) -> dict:
    cfg = SD1_SCHEDULER_CONFIG
    acp = alphas_cumprod(cfg)
    offset = cfg["steps_offset"]
    cases = []
    for spacing in ("leading", "trailing", "linspace"):
        for name in ("ddpm", "ddim", "ddim_eta", "euler", "euler_ancestral", "dpmpp_2m"):
            gen = torch.Generator().manual_seed(1234)
            init = torch.randn(2, 4, 3, 3, generator=gen)
            if name in ("euler", "euler_ancestral"):
                ts = continuous_timesteps(spacing, n_steps, offset)
                sig_max = float(sigmas_for(acp, ts).max())
                init_sigma = sig_max if spacing in ("linspace", "trailing") else (sig_max ** 2 + 1) ** 0.5
                sample = init * init_sigma
                steps = run_euler(acp, ts, sample, gen, ancestral=name == "euler_ancestral")
            elif name == "dpmpp_2m":
                ts = dpm_timesteps(spacing, n_steps, offset)
                init_sigma, sample = 1.0, init
                steps = run_dpmpp_2m(acp, ts, sample)
            else:
                ts = discrete_timesteps(spacing, n_steps, offset)
                init_sigma, sample = 1.0, init
                steps = run_ddpm(acp, ts, sample, gen) if name == "ddpm" else run_ddim(acp, ts, sample, gen, 0.5 if name == "ddim_eta" else 0.0, n_steps)
            cases.append(
                {
                    "scheduler": "ddim" if name == "ddim_eta" else name,
                    "eta": 0.5 if name == "ddim_eta" else 0.0,
                    "spacing": spacing,
                    "num_inference_steps": n_steps,
                    "timesteps": [float(t) for t in ts],
                    "init_noise_sigma": float(init_sigma),
                    "initial_sample": init.flatten().tolist(),
                    "steps": [
                        {"prev_sample": prev.flatten().tolist(), "noise": None if noise is None else noise.flatten().tolist()}
                        for prev, noise in steps
                    ],
                }
            )
    return {"config": cfg, "dummy_model": "tanh(x) * 0.9 + 0.1 * cos(t / 100)", "cases": cases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.write_text(json.dumps(build()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
