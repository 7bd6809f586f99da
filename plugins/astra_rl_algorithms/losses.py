"""Loss kernels shared by the algorithms: input checks, the PPO-clip surrogate, the k3 KL.

Masked positions are replaced by zeros *before* any ``exp``, so padding holding garbage (even
``-inf`` log-probs) yields neither NaN values nor NaN gradients.
"""

from __future__ import annotations

import torch

# exp() of a log-ratio beyond this overflows float32 gradients; ratios this far from 1 are
# clipped by every algorithm anyway.
LOG_RATIO_LIMIT = 20.0


def check_inputs(
    algorithm: str,
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    ref_logprobs: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``(advantages as (batch, 1) or (batch, tokens), mask as a bool tensor, mask as a
    float tensor)`` or raise a ValueError naming the algorithm and the shapes at fault."""
    shape = tuple(logprobs.shape)
    if logprobs.dim() != 2:
        raise ValueError(
            f"rl_algorithm {algorithm!r}: logprobs must have shape (batch, tokens), got {shape}"
        )
    named = {"old_logprobs": old_logprobs, "mask": mask}
    if ref_logprobs is not None:
        named["ref_logprobs"] = ref_logprobs
    for name, tensor in named.items():
        if tuple(tensor.shape) != shape:
            raise ValueError(
                f"rl_algorithm {algorithm!r}: {name} has shape {tuple(tensor.shape)}, "
                f"logprobs has {shape}"
            )
    if advantages.dim() == 1 and advantages.shape[0] == shape[0]:
        adv = advantages[:, None]
    elif tuple(advantages.shape) == shape:
        adv = advantages
    else:
        raise ValueError(
            f"rl_algorithm {algorithm!r}: advantages must have shape (batch,) = ({shape[0]},) "
            f"or {shape}, got {tuple(advantages.shape)}"
        )
    on = mask.bool()
    return adv.to(logprobs.dtype).detach(), on, on.to(logprobs.dtype)


def log_ratio(logprobs: torch.Tensor, old_logprobs: torch.Tensor, on: torch.Tensor) -> torch.Tensor:
    """``log pi/pi_old`` per token, 0 on masked positions, clamped to +-LOG_RATIO_LIMIT."""
    diff = torch.where(on, logprobs - old_logprobs.detach(), torch.zeros_like(logprobs))
    return diff.clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT)


def clipped_surrogate(
    ratio: torch.Tensor, adv: torch.Tensor, clip_low: float, clip_high: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO-clip loss ``-min(ratio * A, clip(ratio, 1 - low, 1 + high) * A)`` and where the clipped
    term won (there the gradient is zero)."""
    unclipped = ratio * adv
    clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high) * adv
    return -torch.minimum(unclipped, clipped), clipped < unclipped


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, on: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimator of KL(pi || pi_ref) per token: ``exp(d) - d - 1`` with
    ``d = log pi_ref - log pi``; non-negative, unbiased, 0 on masked positions."""
    d = torch.where(on, ref_logprobs.detach() - logprobs, torch.zeros_like(logprobs))
    d = d.clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT)
    return torch.expm1(d) - d


def masked_mean(values: torch.Tensor, weights: torch.Tensor) -> float:
    """Mean of ``values`` where ``weights`` is 1, as a float for metrics (0 when empty)."""
    total = float(weights.sum())
    return float((values.detach() * weights).sum()) / total if total > 0 else 0.0
