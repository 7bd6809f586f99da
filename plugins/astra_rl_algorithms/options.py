"""Options of the RL algorithms (the TOML table under ``[train-rl.algorithm]``)."""

from __future__ import annotations

from typing import Any

import attrs

from astra_core.options import at_least, option


def _opt(text: str, default: Any) -> Any:
    # every option of these algorithms is a non-negative number
    return option(text, default, validator=at_least(0))


_KL_HELP = (
    "weight of the k3 KL estimate to a reference model, added to the loss when policy_loss gets "
    "ref_logprobs (0: no KL, as the paper)"
)
_STD_EPS_HELP = "added to the reward std before dividing (no division by zero)"


@attrs.frozen
class GRPOOptions:
    """GRPO as ASTRA trains it: group-normalised advantages, PPO-clip, token-mean over the batch,
    no KL and no entropy bonus by default."""

    clip_eps: float = _opt("PPO clip range: the ratio is clipped to [1 - eps, 1 + eps]", 0.2)
    std_eps: float = _opt(_STD_EPS_HELP, 1e-6)
    kl_coef: float = _opt(_KL_HELP, 0.0)


@attrs.frozen
class DrGRPOOptions:
    """Dr.GRPO: no std normalisation, token losses summed and divided by a constant."""

    clip_eps: float = _opt("PPO clip range: the ratio is clipped to [1 - eps, 1 + eps]", 0.2)
    max_length: int = _opt(
        "the constant the summed token loss of a sequence is divided by (the generation budget "
        "in tokens); 0: the width of the token dimension of the batch",
        0,
    )
    kl_coef: float = _opt(_KL_HELP, 0.0)


@attrs.frozen
class DAPOOptions:
    """DAPO: clip-higher, token-mean over the batch, optional overlong filtering and soft
    overlong punishment. A response's length is its tokens after the prompt (every turn, tool
    outputs included: what the rollout's length budget spends)."""

    clip_low: float = _opt("lower clip range: the ratio is clipped below at 1 - clip_low", 0.2)
    clip_high: float = _opt("upper clip range: the ratio is clipped above at 1 + clip_high", 0.28)
    std_eps: float = _opt(_STD_EPS_HELP, 1e-6)
    max_response_length: int = _opt(
        "response length budget in tokens (after the prompt) of the soft overlong punishment; "
        "with overlong_filter, a response this long counts as truncated (0: not set)",
        0,
    )
    overlong_buffer: int = _opt(
        "soft overlong punishment: a response longer than max_response_length - overlong_buffer "
        "gets a reward penalty falling linearly to -overlong_penalty_factor at "
        "max_response_length (0: no penalty)",
        0,
    )
    overlong_penalty_factor: float = _opt("largest soft overlong penalty", 1.0)
    overlong_filter: bool = option(
        "overlong filtering: truncated responses (cut at the rollout's length cap, or at least "
        "max_response_length tokens when set) are left out of the loss",
        False,
    )
    kl_coef: float = _opt(_KL_HELP, 0.0)

    def __attrs_post_init__(self) -> None:
        if self.overlong_buffer and not self.max_response_length:
            raise ValueError("overlong_buffer needs max_response_length (the budget it ends at)")
        if self.overlong_buffer > self.max_response_length:
            raise ValueError(
                f"overlong_buffer ({self.overlong_buffer}) must be <= max_response_length "
                f"({self.max_response_length})"
            )


@attrs.frozen
class GSPOOptions:
    """GSPO: a sequence-level importance ratio (geometric mean of token ratios), clipped per
    sequence with a small range."""

    clip_low: float = _opt("lower clip range of the sequence ratio (GSPO paper: 3e-4)", 3e-4)
    clip_high: float = _opt("upper clip range of the sequence ratio (GSPO paper: 4e-4)", 4e-4)
    std_eps: float = _opt(_STD_EPS_HELP, 1e-6)
    kl_coef: float = _opt(_KL_HELP, 0.0)


@attrs.frozen
class RLOOOptions:
    """RLOO: each sample's baseline is the mean reward of the other samples of its group."""

    clip_eps: float = _opt("PPO clip range: the ratio is clipped to [1 - eps, 1 + eps]", 0.2)
    kl_coef: float = _opt(_KL_HELP, 0.0)


@attrs.frozen
class ReinforcePPOptions:
    """REINFORCE++: rewards normalised over the whole batch, token-level PPO-clip loss."""

    clip_eps: float = _opt("PPO clip range: the ratio is clipped to [1 - eps, 1 + eps]", 0.2)
    std_eps: float = _opt(_STD_EPS_HELP, 1e-6)
    group_baseline: bool = attrs.field(
        default=False,
        metadata={
            "help": "subtract each group's mean reward before the batch normalisation "
            "(REINFORCE++-baseline)"
        },
    )
    kl_coef: float = _opt(_KL_HELP, 0.0)
