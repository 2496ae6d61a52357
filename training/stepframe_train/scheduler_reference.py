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


def karras(in_sigmas: np.ndarray, n: int) -> np.ndarray:
    """_convert_to_karras: rho = 7 between the given levels' last (sigma_min) and first (sigma_max)."""
    sigma_min, sigma_max = float(in_sigmas[-1]), float(in_sigmas[0])
    rho = 7.0
    ramp = np.linspace(0, 1, n)
    return (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho


def sigma_to_t(sigma: float, log_sigmas: np.ndarray) -> float:
    """_sigma_to_t: the fractional training timestep whose sigma this is, linear in log sigma."""
    log_sigma = np.log(np.maximum(sigma, 1e-10))
    dists = log_sigma - log_sigmas[:, np.newaxis]
    low = np.cumsum((dists >= 0), axis=0).argmax(axis=0).clip(max=log_sigmas.shape[0] - 2)
    high = low + 1
    lo, hi = log_sigmas[low], log_sigmas[high]
    w = np.clip((lo - log_sigma) / (lo - hi), 0, 1)
    return float(((1 - w) * low + w * high).reshape(-1)[0])


def table_sigmas(acp) -> np.ndarray:
    return np.array(((1 - acp) / acp) ** 0.5)


def karras_run(acp, ts):
    """Euler / LMS with use_karras_sigmas: karras over the run's interpolated levels, timesteps mapped back."""
    table = table_sigmas(acp)
    in_sigmas = np.interp(ts, np.arange(0, len(table)), table)
    sig = karras(in_sigmas, len(ts))
    new_ts = np.array([sigma_to_t(x, np.log(table)) for x in sig])
    return new_ts.astype(np.float32), np.concatenate([sig, [0.0]]).astype(np.float32)


def lms_coefficient(sig: np.ndarray, order: int, i: int, j: int) -> float:
    """get_lms_coefficient, integrated exactly: the Lagrange basis polynomial over [sigma_i, sigma_i+1]."""
    poly = np.poly1d([1.0])
    for k in range(order):
        if k != j:
            poly = poly * np.poly1d([1.0, -float(sig[i - k])]) / (float(sig[i - j]) - float(sig[i - k]))
    integral = np.polyint(poly)
    return float(integral(float(sig[i + 1])) - integral(float(sig[i])))


def run_lms(sig_np, ts, sample):
    sig = torch.from_numpy(sig_np)
    derivatives, steps = [], []
    for i, t in enumerate(ts):
        s = sig[i]
        eps = dummy_model(sample / (s ** 2 + 1) ** 0.5, t)
        x0 = sample - s * eps
        derivatives.append((sample - x0) / s)
        if len(derivatives) > 4:
            derivatives.pop(0)
        order = min(i + 1, 4)
        coeffs = [lms_coefficient(sig_np, order, i, j) for j in range(order)]
        prev = sample + sum(c * d for c, d in zip(coeffs, reversed(derivatives)))
        steps.append((prev, None))
        sample = prev
    return steps


def run_euler(acp, ts, sample, gen, ancestral, sig_np=None):
    sig = torch.from_numpy(sigmas_for(acp, ts) if sig_np is None else sig_np)
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


def dpm_karras_run(acp, n):
    """DPMSolverMultistepScheduler with use_karras_sigmas: the whole training range, rounded timesteps, final 0."""
    table = table_sigmas(acp)
    sig = karras(np.flip(table).copy(), n)
    ts = np.array([sigma_to_t(x, np.log(table)) for x in sig]).round().astype(np.int64)
    return ts, np.concatenate([sig, [0.0]]).astype(np.float32)


def run_dpmpp_2m(acp, ts, sample, sig_np=None):
    sig = torch.from_numpy(sigmas_for(acp, ts) if sig_np is None else sig_np).double()
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


def pndm_timesteps(spacing: str, n: int, offset: int, skip_prk: bool) -> tuple[np.ndarray, int]:
    """PNDMScheduler.set_timesteps: the Runge-Kutta warm-up's timesteps (none with skip_prk_steps), then PLMS's."""
    if spacing == "linspace":
        asc = np.linspace(0, T - 1, n).round().astype(np.int64)
    elif spacing == "leading":
        asc = (np.arange(0, n) * (T // n)).round().astype(np.int64) + offset
    else:
        asc = np.round(np.arange(T, 0, -T / n))[::-1].astype(np.int64) - 1
    if skip_prk:
        prk = np.array([], dtype=np.int64)
        plms = np.concatenate([asc[:-1], asc[-2:-1], asc[-1:]])[::-1].copy()
    else:
        prk = np.array(asc[-4:]).repeat(2) + np.tile(np.array([0, T // n // 2]), 4)
        prk = (prk[:-1].repeat(2)[1:-1])[::-1].copy()
        plms = asc[:-3][::-1].copy()
    return np.concatenate([prk, plms]).astype(np.int64), len(prk)


def run_pndm(acp, ts, n_prk, sample, n):
    """PNDMScheduler.step: step_prk for the warm-up, then step_plms, each through _get_prev_sample."""
    ratio = T // n
    final = acp[0]  # set_alpha_to_one = False

    def prev_sample(x, t, prev_t, eps):
        a_t = acp[t]
        a_prev = acp[prev_t] if prev_t >= 0 else final
        b_t, b_prev = 1 - a_t, 1 - a_prev
        coeff = (a_prev / a_t) ** 0.5
        denom = a_t * b_prev ** 0.5 + (a_t * b_t * a_prev) ** 0.5
        return coeff * x - (a_prev - a_t) * eps / denom

    ets, counter, cur_sample, cur_out = [], 0, None, 0
    steps = []
    for t in ts:
        t = int(t)
        out = dummy_model(sample, t)
        if counter < n_prk:
            diff = 0 if counter % 2 else ratio // 2
            prev_t = t - diff
            t0 = int(ts[counter // 4 * 4])
            if counter % 4 == 0:
                cur_out = cur_out + out / 6
                ets.append(out)
                cur_sample = sample
            elif counter % 4 in (1, 2):
                cur_out = cur_out + out / 3
            else:
                out = cur_out + out / 6
                cur_out = 0
            base = cur_sample if cur_sample is not None else sample
            prev = prev_sample(base, t0, prev_t, out)
        else:
            prev_t = t - ratio
            if counter != 1:
                ets = ets[-3:]
                ets.append(out)
            else:
                prev_t = t
                t = t + ratio
            if len(ets) == 1 and counter == 0:
                cur_sample = sample
            elif len(ets) == 1 and counter == 1:
                out = (out + ets[-1]) / 2
                sample = cur_sample
                cur_sample = None
            elif len(ets) == 2:
                out = (3 * ets[-1] - ets[-2]) / 2
            elif len(ets) == 3:
                out = (23 * ets[-1] - 16 * ets[-2] + 5 * ets[-3]) / 12
            else:
                out = (55 * ets[-1] - 59 * ets[-2] + 37 * ets[-3] - 9 * ets[-4]) / 24
            prev = prev_sample(sample, t, prev_t, out)
        counter += 1
        steps.append((prev, None))
        sample = prev
    return steps


def run_lcm(acp, n, sample, gen, original=50, scaling=10.0):
    """LCMScheduler: evenly spaced over the distillation schedule; consistency boundary condition; fresh noise but for the last step."""
    k = T // original
    origin = (np.asarray(list(range(1, original + 1))) * k - 1)[::-1].copy()
    ts = origin[np.floor(np.linspace(0, len(origin), num=n, endpoint=False)).astype(np.int64)]
    steps = []
    for i, t in enumerate(ts):
        t = int(t)
        eps = dummy_model(sample, t)
        prev_t = int(ts[i + 1]) if i + 1 < len(ts) else t
        a_t = acp[t]
        a_prev = acp[prev_t] if prev_t >= 0 else acp[0]  # set_alpha_to_one = False
        scaled = t * scaling
        c_skip = 0.5 ** 2 / (scaled ** 2 + 0.5 ** 2)
        c_out = scaled / (scaled ** 2 + 0.5 ** 2) ** 0.5
        x0 = (sample - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
        denoised = c_out * x0 + c_skip * sample
        noise = None
        if i != len(ts) - 1:
            noise = torch.randn(sample.shape, generator=gen)
            prev = a_prev ** 0.5 * denoised + (1 - a_prev) ** 0.5 * noise
        else:
            prev = denoised
        steps.append((prev, noise))
        sample = prev
    return ts.astype(np.int64), steps


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
