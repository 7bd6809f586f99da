"""DAPO's overlong reward shaping: mask truncated responses, or penalise long ones softly."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _lengths(lengths: Sequence[int] | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(lengths, dtype=torch.float32).reshape(-1)


def overlong_mask(lengths: Sequence[int] | torch.Tensor, max_length: int) -> torch.Tensor:
    """1.0 for each response shorter than ``max_length`` tokens, 0.0 for one that reached it
    (truncated: its reward says nothing about its answer, so it is left out of the loss)."""
    if max_length <= 0:
        raise ValueError(f"overlong_mask: max_length must be > 0, got {max_length}")
    return (_lengths(lengths) < max_length).float()


def soft_overlong_penalty(
    lengths: Sequence[int] | torch.Tensor, max_length: int, buffer: int, *, factor: float = 1.0
) -> torch.Tensor:
    """DAPO Eq. 13: 0 up to ``max_length - buffer`` tokens, then falling linearly to
    ``-factor`` at ``max_length`` (and ``-factor`` beyond); all zeros when ``buffer`` is 0."""
    if max_length <= 0:
        raise ValueError(f"soft_overlong_penalty: max_length must be > 0, got {max_length}")
    if buffer < 0 or buffer > max_length:
        raise ValueError(
            f"soft_overlong_penalty: buffer must be in [0, max_length={max_length}], got {buffer}"
        )
    n = _lengths(lengths)
    if buffer == 0:
        return torch.zeros_like(n)
    excess = n - (max_length - buffer)
    return (-excess / buffer * factor).clamp(min=-factor, max=0.0)
