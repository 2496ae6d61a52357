"""DDPM and DDIM steps (scheduling_ddpm.py, scheduling_ddim.py), restated in float32 torch."""
from __future__ import annotations

import torch

from .tables import T, dummy_model


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
