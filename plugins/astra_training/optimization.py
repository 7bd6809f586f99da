"""The optimizer and learning-rate schedules of both trainers: AdamW over the trainable
parameters (the adapters only under LoRA), SFT's cosine schedule with warmup and RL's constant
one with warmup. Schedulers are stepped by the trainers themselves, once per optimizer step
(SFT) or RL step, never by Accelerate."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def adamw(
    params: Iterable[torch.nn.Parameter],
    *,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> torch.optim.AdamW:
    return torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def cosine_schedule(
    optimizer: torch.optim.Optimizer, warmup: int, total: int, min_ratio: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup to the peak over ``warmup`` steps, then a cosine to ``min_ratio`` x peak.
    Step ``s`` trains with the factor at ``s`` (the first step at 1/warmup of the peak)."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total - warmup)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def constant_schedule(
    optimizer: torch.optim.Optimizer, warmup: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup from 0 over ``warmup`` steps, then the peak (transformers' schedule)."""
    from transformers import get_constant_schedule_with_warmup

    schedule: torch.optim.lr_scheduler.LambdaLR = get_constant_schedule_with_warmup(
        optimizer, warmup
    )
    return schedule
