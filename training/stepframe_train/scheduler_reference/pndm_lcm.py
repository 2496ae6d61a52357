"""PNDM (SD 1.x's shipped scheduler, PLMS steps) and LCM, restated from their scheduling_*.py."""
from __future__ import annotations

import numpy as np
import torch

from .tables import T, dummy_model


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
