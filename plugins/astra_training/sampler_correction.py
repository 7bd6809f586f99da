"""Truncated importance sampling between the sampler (an inference server) and the trainer.

The server's kernels, precision and batching differ from the trainer's, and it may hold weights
a sync behind, so the tokens it samples come from a distribution ``q`` that is not quite the
trainer's ``pi_old`` (the trainer's policy at the weights the rollout was made with). Each
sampled token's policy loss is weighted by

    w = min(exp(log pi_old - log q), cap)

detached, as verl's ``tis_imp_ratio_cap`` and TRL's ``vllm_importance_sampling_correction``
(with ``vllm_importance_sampling_cap``) do: the importance ratio corrects the gradient towards
the trainer's distribution, and the cap bounds the variance a token the sampler found unlikely
would bring. Since ``w >= 0``, weighting a token's clipped surrogate by ``w`` is the same as
multiplying its advantage by ``w``, which is how the trainer applies it (any algorithm that takes
per-token advantages gets it unchanged).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from astra_training.rollout import Rollout

# exp() beyond this overflows; such a ratio is capped anyway
_LOG_RATIO_LIMIT = 20.0


def sampler_logprob_matrix(rollouts: Sequence[Rollout], width: int) -> torch.Tensor | None:
    """The sampler's log-prob of each id, shifted as the trainer's log-probs are (position
    ``t`` holds that of id ``t + 1``): shape ``(rows, width - 1)``, NaN where unknown (tokens
    not sampled, or rollouts of a generator that reports none). None when no rollout has any."""
    if not any(r.sampler_logprobs for r in rollouts):
        return None
    out = torch.full((len(rollouts), width - 1), math.nan)
    for row, r in enumerate(rollouts):
        if r.sampler_logprobs:
            values = torch.tensor(r.sampler_logprobs[1:], dtype=torch.float32)
            sampled = torch.tensor(r.mask[1:], dtype=torch.bool)
            out[row, : len(values)] = torch.where(sampled, values, math.nan)
    return out


def truncated_importance_weights(
    old_logprobs: torch.Tensor, sampler_logprobs: torch.Tensor, mask: torch.Tensor, cap: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """Per-token weights ``min(exp(old - sampler), cap)`` where ``mask`` is set and the
    sampler's log-prob is known, 1 elsewhere; and metrics over the weighted tokens:
    ``tis_weight_mean``, ``tis_capped_fraction`` (tokens whose ratio exceeded the cap) and
    ``sampler_kl`` (k3 estimate of KL(q || pi_old) per token: the mismatch itself)."""
    sampler = sampler_logprobs.to(old_logprobs.device)
    known = mask.bool() & ~torch.isnan(sampler)
    diff = torch.where(known, old_logprobs.detach().float() - sampler, torch.zeros_like(sampler))
    diff = diff.clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)
    ratio = torch.exp(diff)
    weights = torch.where(known, ratio.clamp(max=cap), torch.ones_like(ratio))
    n = int(known.sum())
    if not n:
        return weights, {}
    on = known.float()
    metrics = {
        "tis_weight_mean": float((weights * on).sum()) / n,
        "tis_capped_fraction": float(((ratio > cap) & known).sum()) / n,
        # k3 with log(pi_old / q) = diff, under tokens drawn from q
        "sampler_kl": float(((torch.expm1(diff) - diff) * on).sum()) / n,
    }
    return weights, metrics
