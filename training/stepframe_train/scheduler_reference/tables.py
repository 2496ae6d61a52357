"""The noise tables, timestep spacings and sigma schedules the reference loops share, as diffusers builds them."""
from __future__ import annotations

import math

import numpy as np
import torch

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


def dpm_karras_run(acp, n):
    """DPMSolverMultistepScheduler with use_karras_sigmas: the whole training range, rounded timesteps, final 0."""
    table = table_sigmas(acp)
    sig = karras(np.flip(table).copy(), n)
    ts = np.array([sigma_to_t(x, np.log(table)) for x in sig]).round().astype(np.int64)
    return ts, np.concatenate([sig, [0.0]]).astype(np.float32)
