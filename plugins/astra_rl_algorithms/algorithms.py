"""The RL algorithms: GRPO (as the paper trains), Dr.GRPO, DAPO, GSPO, RLOO and REINFORCE++.

Each satisfies ``astra_core.protocols.RLAlgorithm``. On top of the protocol, every algorithm
offers two keywords of ``policy_loss`` and a few attributes a trainer may use:

* ``ref_logprobs``: log-probs of a reference model; with ``kl_coef > 0`` the k3 KL estimate is
  added to the loss (``needs_reference`` tells the trainer to compute them).
* ``normalizer``: the loss denominator of the *whole* batch, from ``loss_normalizer(counts)``
  (``counts`` = sampled tokens per sequence). A trainer that splits a batch into micro-batches
  passes it to every call and sums the returned losses: the sum is then exactly the full-batch
  loss, whatever the aggregation (token-mean, Dr.GRPO's constant, sequence-mean).
* ``aggregation``: how token losses are reduced ("token-mean", "sequence-constant",
  "sequence-mean").

Groups with no reward variance are dropped by the RL trainer's adaptive batch filling (the
training plugin's ``AdaptiveBatchFiller``), which works with any algorithm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from astra_rl_algorithms.advantages import (
    batch_normalized,
    check_rewards,
    group_normalized,
    leave_one_out,
)
from astra_rl_algorithms.losses import (
    check_inputs,
    clipped_surrogate,
    k3_kl,
    log_ratio,
    masked_mean,
)
from astra_rl_algorithms.options import (
    DAPOOptions,
    DrGRPOOptions,
    GRPOOptions,
    GSPOOptions,
    ReinforcePPOptions,
    RLOOOptions,
)
from astra_rl_algorithms.overlong import overlong_mask, soft_overlong_penalty

TOKEN_MEAN = "token-mean"
SEQUENCE_CONSTANT = "sequence-constant"
SEQUENCE_MEAN = "sequence-mean"


class PolicyGradientAlgorithm:
    """A clipped policy-gradient loss over sampled tokens with per-sequence advantages.

    Subclasses choose the advantage estimator, the clip range and the aggregation.
    """

    name: ClassVar[str] = "policy-gradient"
    aggregation: ClassVar[str] = TOKEN_MEAN
    # policy_loss also takes advantages of shape (batch, tokens) (the trainer's turn_credit)
    per_token_advantages: ClassVar[bool] = True

    def __init__(self, options: Any) -> None:
        self.options = options

    # -- knobs read from the options -------------------------------------------------------------

    @property
    def clip_low(self) -> float:
        return float(getattr(self.options, "clip_low", getattr(self.options, "clip_eps", 0.2)))

    @property
    def clip_high(self) -> float:
        return float(getattr(self.options, "clip_high", getattr(self.options, "clip_eps", 0.2)))

    @property
    def kl_coef(self) -> float:
        return float(self.options.kl_coef)

    @property
    def needs_reference(self) -> bool:
        """True when ``policy_loss`` must be given ``ref_logprobs`` (``kl_coef > 0``)."""
        return self.kl_coef > 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options!r})"

    # -- the protocol ----------------------------------------------------------------------------

    def advantages(self, rewards: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def policy_loss(
        self,
        logprobs: torch.Tensor,
        old_logprobs: torch.Tensor,
        advantages: torch.Tensor,
        mask: torch.Tensor,
        *,
        ref_logprobs: torch.Tensor | None = None,
        normalizer: float | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss to minimise on a batch (or a micro-batch, with the batch's ``normalizer``)
        and float metrics: ``pg_loss``, ``clip_fraction``, ``ratio_mean``, ``approx_kl`` (to
        the sampling policy), ``kl_ref`` (to the reference, when given)."""
        if self.needs_reference and ref_logprobs is None:
            raise ValueError(
                f"rl_algorithm {self.name!r}: kl_coef={self.kl_coef} needs ref_logprobs (the "
                "log-probs of a reference model); the trainer did not pass them"
            )
        if logprobs.dtype in (torch.float16, torch.bfloat16):
            # exp() of half-precision log-ratios is too coarse for clipping at 1 +- 3e-4
            logprobs, old_logprobs = logprobs.float(), old_logprobs.float()
            ref_logprobs = None if ref_logprobs is None else ref_logprobs.float()
        adv, on, weights = check_inputs(
            self.name, logprobs, old_logprobs, advantages, mask, ref_logprobs
        )
        loss, metrics = self._policy_term(logprobs, old_logprobs, adv, on, weights, normalizer)
        metrics["pg_loss"] = float(loss.detach())
        if ref_logprobs is not None:
            kl = k3_kl(logprobs, ref_logprobs, on)
            metrics["kl_ref"] = masked_mean(kl, weights)
            if self.kl_coef > 0:
                loss = loss + self.kl_coef * self._aggregate(kl, weights, normalizer)
        return loss, metrics

    def loss_normalizer(self, token_counts: Sequence[int] | torch.Tensor) -> float:
        """The loss denominator of a whole batch whose sequences sampled ``token_counts``
        tokens; pass it as ``normalizer`` to ``policy_loss`` on each micro-batch."""
        counts = [int(c) for c in token_counts]
        return float(max(sum(counts), 1))

    # -- shared pieces ---------------------------------------------------------------------------

    def _policy_term(
        self,
        logprobs: torch.Tensor,
        old_logprobs: torch.Tensor,
        adv: torch.Tensor,
        on: torch.Tensor,
        weights: torch.Tensor,
        normalizer: float | None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        lr = log_ratio(logprobs, old_logprobs, on)
        ratio = torch.exp(lr)
        per_token, clipped = clipped_surrogate(ratio, adv, self.clip_low, self.clip_high)
        metrics = {
            "clip_fraction": masked_mean(clipped.to(weights.dtype), weights),
            "ratio_mean": masked_mean(ratio, weights),
            "approx_kl": masked_mean(0.5 * lr.detach() ** 2, weights),
        }
        return self._aggregate(per_token, weights, normalizer), metrics

    def _aggregate(
        self, per_token: torch.Tensor, weights: torch.Tensor, normalizer: float | None
    ) -> torch.Tensor:
        """Token-mean over every sampled token of the batch (DAPO's, the paper's choice)."""
        denom = normalizer if normalizer is not None else weights.sum().clamp_min(1.0)
        return (per_token * weights).sum() / denom


class GRPO(PolicyGradientAlgorithm):
    """GRPO as the paper: (r - mean) / (std + eps) per group, PPO-clip, token-mean over the
    batch, no KL and no entropy bonus unless ``kl_coef`` is set."""

    name = "grpo"

    def __init__(self, options: GRPOOptions | None = None) -> None:
        super().__init__(options or GRPOOptions())

    def advantages(self, rewards: torch.Tensor) -> torch.Tensor:
        rewards = check_rewards(rewards, self.name)
        return group_normalized(rewards, eps=self.options.std_eps)


class DrGRPO(PolicyGradientAlgorithm):
    """Dr.GRPO: advantages are ``r - mean`` (no std), each sequence's token losses are summed
    and divided by a constant (``max_length``), then averaged over sequences."""

    name = "dr_grpo"
    aggregation = SEQUENCE_CONSTANT

    def __init__(self, options: DrGRPOOptions | None = None) -> None:
        super().__init__(options or DrGRPOOptions())

    def advantages(self, rewards: torch.Tensor) -> torch.Tensor:
        rewards = check_rewards(rewards, self.name)
        return group_normalized(rewards, eps=0.0, scale=False)

    def _aggregate(
        self, per_token: torch.Tensor, weights: torch.Tensor, normalizer: float | None
    ) -> torch.Tensor:
        if normalizer is None:
            batch, width = weights.shape
            normalizer = float(batch * (self.options.max_length or width))
        return (per_token * weights).sum() / normalizer

    def loss_normalizer(self, token_counts: Sequence[int] | torch.Tensor) -> float:
        """``sequences * max_length``; without ``max_length`` the longest sequence's count
        stands in for it (set ``max_length`` to the generation budget for a true constant)."""
        counts = [int(c) for c in token_counts]
        length = self.options.max_length or max(counts, default=1)
        return float(max(len(counts), 1) * max(length, 1))


class DAPO(PolicyGradientAlgorithm):
    """DAPO: group-normalised advantages, clip-higher (0.2 / 0.28), token-mean over the batch.

    Overlong shaping needs response lengths, which advantages() does not see: a trainer adds
    ``reward_shaping(lengths, truncated)`` (the soft overlong punishment) to the rewards before
    ``advantages`` and multiplies each sequence's loss mask by ``sequence_weights(lengths,
    truncated)`` (overlong filtering: 0 for a truncated response). The RL trainer does both.
    Dynamic sampling (dropping groups with equal rewards) is ``AdaptiveBatchFiller(delta=0)``.
    """

    name = "dapo"

    def __init__(self, options: DAPOOptions | None = None) -> None:
        super().__init__(options or DAPOOptions())

    def advantages(self, rewards: torch.Tensor) -> torch.Tensor:
        rewards = check_rewards(rewards, self.name)
        return group_normalized(rewards, eps=self.options.std_eps)

    def _max_length(self) -> int:
        if self.options.max_response_length <= 0:
            raise ValueError(
                f"rl_algorithm {self.name!r}: set max_response_length to use overlong masking "
                "or the soft overlong penalty"
            )
        return int(self.options.max_response_length)

    def overlong_mask(self, lengths: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """1.0 for responses shorter than ``max_response_length``, 0.0 for truncated ones."""
        return overlong_mask(lengths, self._max_length())

    def overlong_penalty(self, lengths: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """DAPO's soft overlong punishment per response (0 when ``overlong_buffer`` is 0)."""
        return soft_overlong_penalty(
            lengths,
            self._max_length(),
            self.options.overlong_buffer,
            factor=self.options.overlong_penalty_factor,
        )

    # -- what the RL trainer asks of an algorithm that shapes by response length ---------------

    def reward_shaping(
        self, lengths: Sequence[int] | torch.Tensor, truncated: Sequence[bool] | torch.Tensor
    ) -> torch.Tensor:
        """Added to each response's reward before ``advantages``: the soft overlong punishment
        (zeros without ``overlong_buffer``)."""
        if not self.options.overlong_buffer:
            return torch.zeros(len(lengths))
        return self.overlong_penalty(lengths)

    def sequence_weights(
        self, lengths: Sequence[int] | torch.Tensor, truncated: Sequence[bool] | torch.Tensor
    ) -> torch.Tensor:
        """Each response's loss-mask multiplier: with ``overlong_filter``, 0.0 for a truncated one
        (``truncated``, or ``max_response_length`` tokens when set), else 1.0."""
        keep = torch.ones(len(lengths))
        if not self.options.overlong_filter:
            return keep
        keep = keep * (~torch.as_tensor(truncated, dtype=torch.bool).reshape(-1)).float()
        if self.options.max_response_length:
            keep = keep * self.overlong_mask(lengths)
        return keep


class GSPO(PolicyGradientAlgorithm):
    """GSPO: the importance ratio of a sequence is the geometric mean of its token ratios,
    ``s_i = exp(mean_t log(pi/pi_old))``, clipped per sequence to [1 - 3e-4, 1 + 4e-4]; the
    loss is the mean over sequences."""

    name = "gspo"
    aggregation = SEQUENCE_MEAN
    per_token_advantages = False  # one ratio per sequence, so one advantage per sequence

    def __init__(self, options: GSPOOptions | None = None) -> None:
        super().__init__(options or GSPOOptions())

    def advantages(self, rewards: torch.Tensor) -> torch.Tensor:
        rewards = check_rewards(rewards, self.name)
        return group_normalized(rewards, eps=self.options.std_eps)

    @staticmethod
    def sequence_log_ratio(
        logprobs: torch.Tensor, old_logprobs: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """``mean_t log(pi/pi_old)`` over each sequence's sampled tokens, shape (batch,)."""
        on = mask.bool()
        lengths = on.sum(dim=1).clamp_min(1).to(logprobs.dtype)
        return log_ratio(logprobs, old_logprobs, on).sum(dim=1) / lengths

    def _policy_term(
        self,
        logprobs: torch.Tensor,
        old_logprobs: torch.Tensor,
        adv: torch.Tensor,
        on: torch.Tensor,
        weights: torch.Tensor,
        normalizer: float | None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        if adv.shape[1] != 1:
            raise ValueError(
                f"rl_algorithm {self.name!r}: takes one advantage per sequence, shape (batch,)"
            )
        seq_ratio = torch.exp(self.sequence_log_ratio(logprobs, old_logprobs, on))
        per_seq, clipped = clipped_surrogate(seq_ratio, adv[:, 0], self.clip_low, self.clip_high)
        has_tokens = (weights.sum(dim=1) > 0).to(weights.dtype)
        denom = normalizer if normalizer is not None else has_tokens.sum().clamp_min(1.0)
        metrics = {
            "clip_fraction": masked_mean(clipped.to(weights.dtype), has_tokens),
            "ratio_mean": masked_mean(seq_ratio, has_tokens),
            "approx_kl": masked_mean(0.5 * log_ratio(logprobs, old_logprobs, on) ** 2, weights),
        }
        return (per_seq * has_tokens).sum() / denom, metrics

    def _aggregate(
        self, per_token: torch.Tensor, weights: torch.Tensor, normalizer: float | None
    ) -> torch.Tensor:
        # Token-mean within each sequence, then the mean over sequences (used for the KL term).
        has_tokens = (weights.sum(dim=1) > 0).to(weights.dtype)
        per_seq = (per_token * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        denom = normalizer if normalizer is not None else has_tokens.sum().clamp_min(1.0)
        return per_seq.sum() / denom

    def loss_normalizer(self, token_counts: Sequence[int] | torch.Tensor) -> float:
        return float(max(sum(1 for c in token_counts if int(c) > 0), 1))


class RLOO(PolicyGradientAlgorithm):
    """RLOO: advantage ``r_i - mean of the other samples of the group``, PPO-clip, token-mean."""

    name = "rloo"

    def __init__(self, options: RLOOOptions | None = None) -> None:
        super().__init__(options or RLOOOptions())

    def advantages(self, rewards: torch.Tensor) -> torch.Tensor:
        return leave_one_out(check_rewards(rewards, self.name))


class ReinforcePP(PolicyGradientAlgorithm):
    """REINFORCE++: rewards normalised over the whole batch (not per group), PPO-clip,
    token-mean; ``group_baseline`` gives REINFORCE++-baseline."""

    name = "reinforce_pp"

    def __init__(self, options: ReinforcePPOptions | None = None) -> None:
        super().__init__(options or ReinforcePPOptions())

    def advantages(self, rewards: torch.Tensor) -> torch.Tensor:
        rewards = check_rewards(rewards, self.name, min_group=1)
        return batch_normalized(
            rewards, eps=self.options.std_eps, group_baseline=self.options.group_baseline
        )
