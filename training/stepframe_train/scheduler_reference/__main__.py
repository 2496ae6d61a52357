"""Reference numbers for the TypeScript schedulers, computed with diffusers' equations in float32 torch.

diffusers itself cannot be installed here, so each step (one module per scheduler family beside this one) restates the corresponding
`scheduling_*.py` step function for prediction_type "epsilon" with SD 1.x's config. The fixture
records, per scheduler and timestep spacing, the timesteps, init_noise_sigma and every
intermediate sample of a full loop driven by a dummy model (as diffusers' own tests do), with the
noise each stochastic step consumed.

    /usr/bin/python3 -m stepframe_train.scheduler_reference --out ../test/fixtures/schedulers.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..manifest import SD1_SCHEDULER_CONFIG
from .ddpm_ddim import run_ddim, run_ddpm
from .pndm_lcm import pndm_timesteps, run_lcm, run_pndm
from .sigma_samplers import run_dpmpp_2m, run_euler, run_lms
from .tables import alphas_cumprod, continuous_timesteps, discrete_timesteps, dpm_karras_run, dpm_timesteps, karras_run, sigmas_for


def build(n_steps: int = 12) -> dict:
    cfg = SD1_SCHEDULER_CONFIG
    acp = alphas_cumprod(cfg)
    offset = cfg["steps_offset"]
    cases = []
    for spacing in ("leading", "trailing", "linspace"):
        names = ("ddpm", "ddim", "ddim_eta", "pndm", "pndm_prk", "lms", "euler", "euler_ancestral", "dpmpp_2m",
                 "lms_karras", "euler_karras", "euler_ancestral_karras", "dpmpp_2m_karras", "lcm")
        for name in names:
            gen = torch.Generator().manual_seed(1234)
            init = torch.randn(2, 4, 3, 3, generator=gen)
            overrides = {}
            base = name.removesuffix("_karras")
            if name.endswith("_karras"):
                overrides = {"use_karras_sigmas": True}
            if name == "lcm":
                # LCM's schedule ignores timestep_spacing; each spacing's case checks the same loop.
                init_sigma, sample = 1.0, init
                ts, steps = run_lcm(acp, n_steps, sample, gen)
            elif name in ("pndm", "pndm_prk"):
                overrides = {"skip_prk_steps": name == "pndm"}
                ts, n_prk = pndm_timesteps(spacing, n_steps, offset, name == "pndm")
                init_sigma, sample = 1.0, init
                steps = run_pndm(acp, ts, n_prk, sample, n_steps)
            elif base in ("euler", "euler_ancestral", "lms"):
                ts = continuous_timesteps(spacing, n_steps, offset)
                sig = sigmas_for(acp, ts)
                if name.endswith("_karras"):
                    ts, sig = karras_run(acp, ts)
                sig_max = float(sig.max())
                init_sigma = sig_max if spacing in ("linspace", "trailing") else (sig_max ** 2 + 1) ** 0.5
                sample = init * init_sigma
                if base == "lms":
                    steps = run_lms(sig, ts, sample)
                else:
                    steps = run_euler(acp, ts, sample, gen, ancestral=base == "euler_ancestral", sig_np=sig)
            elif base == "dpmpp_2m":
                if name.endswith("_karras"):
                    ts, sig = dpm_karras_run(acp, n_steps)
                else:
                    ts, sig = dpm_timesteps(spacing, n_steps, offset), None
                init_sigma, sample = 1.0, init
                steps = run_dpmpp_2m(acp, ts, sample, sig)
            else:
                ts = discrete_timesteps(spacing, n_steps, offset)
                init_sigma, sample = 1.0, init
                steps = run_ddpm(acp, ts, sample, gen) if name == "ddpm" else run_ddim(acp, ts, sample, gen, 0.5 if name == "ddim_eta" else 0.0, n_steps)
            cases.append(
                {
                    "scheduler": {"ddim_eta": "ddim", "pndm_prk": "pndm"}.get(name, base),
                    "config": overrides,
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
