"""The sigma-space samplers: LMS, Euler, Euler ancestral and DPM++ 2M (their scheduling_*.py step functions)."""
from __future__ import annotations

import numpy as np
import torch

from .tables import dummy_model, sigmas_for


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
