"""Two-process data parallelism on one CPU: each process takes one core and half the batch.

On these 2-core machines one process on two threads is slower per step than one on a single
thread (PyTorch's per-op overhead dominates a model this small), so the second core is better
spent on a second process whose gradients are averaged with the first's after every backward.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist


def join(rendezvous: Path, rank: int, world_size: int) -> None:
    """Joins the group through a file both processes can see (no port to pick or clash)."""
    dist.init_process_group("gloo", init_method=f"file://{rendezvous.resolve()}", rank=rank, world_size=world_size)


def leave() -> None:
    dist.destroy_process_group()


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """One all-reduce over all gradients flattened together: one message instead of one per tensor."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(p)
        offset += n
