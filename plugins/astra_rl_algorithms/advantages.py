"""Advantage estimators: one scalar per sampled sequence from rewards of shape (groups, G).

Every estimator is outcome-only (one reward per trajectory, as the paper's F1 reward); the
advantage is broadcast over the sequence's tokens by the loss.
"""

from __future__ import annotations

import torch


def check_rewards(rewards: torch.Tensor, algorithm: str, *, min_group: int = 2) -> torch.Tensor:
    """``rewards`` as a float tensor of shape (groups, G), or a ValueError naming ``algorithm``."""
    if not isinstance(rewards, torch.Tensor):
        rewards = torch.as_tensor(rewards)
    if rewards.dim() != 2:
        raise ValueError(
            f"rl_algorithm {algorithm!r}: rewards must have shape (groups, group_size), "
            f"got {tuple(rewards.shape)}"
        )
    if rewards.shape[1] < min_group:
        raise ValueError(
            f"rl_algorithm {algorithm!r}: needs groups of at least {min_group} samples to form "
            f"a baseline, got group_size {rewards.shape[1]}"
        )
    if not torch.is_floating_point(rewards):
        rewards = rewards.float()
    if not torch.isfinite(rewards).all():
        raise ValueError(f"rl_algorithm {algorithm!r}: rewards contain NaN or inf: {rewards}")
    return rewards


def group_normalized(rewards: torch.Tensor, *, eps: float, scale: bool = True) -> torch.Tensor:
    """GRPO: ``(r - mean_group) / (std_group + eps)``; with ``scale=False`` (Dr.GRPO) only the
    mean is subtracted. The std is the sample std (Bessel), as verl and TRL compute it."""
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if not scale:
        return centred
    return centred / (rewards.std(dim=1, keepdim=True) + eps)


def leave_one_out(rewards: torch.Tensor) -> torch.Tensor:
    """RLOO: ``r_i - mean_{j != i} r_j`` within each group."""
    g = rewards.shape[1]
    others = (rewards.sum(dim=1, keepdim=True) - rewards) / (g - 1)
    return rewards - others


def batch_normalized(
    rewards: torch.Tensor, *, eps: float, group_baseline: bool = False
) -> torch.Tensor:
    """REINFORCE++: normalise over every sample of the batch (not per group); with
    ``group_baseline`` the group mean is subtracted first (REINFORCE++-baseline)."""
    values = rewards - rewards.mean(dim=1, keepdim=True) if group_baseline else rewards
    flat = values.reshape(-1)
    if flat.numel() < 2:
        return torch.zeros_like(values)
    return (values - flat.mean()) / (flat.std() + eps)
