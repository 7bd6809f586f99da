"""Length-based shaping an RL algorithm may ask for (DAPO's overlong punishment and filtering).

An algorithm that shapes by response length has ``reward_shaping(lengths, truncated)`` (added to
each episode's reward before advantages, and before the batch filler judges a group's spread)
and ``sequence_weights(lengths, truncated)`` (each sequence's loss-mask multiplier). A response's
length is its tokens after the prompt, tool outputs included (what the rollout's ``max_length``
spends); it is truncated when the rollout stopped it at that cap. Algorithms without them are
trained on the verifier's rewards and every sampled token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from astra_training.rollout import Rollout


def response_length(rollout: Rollout) -> int:
    """Tokens after the prompt: every assistant turn and what came back between them."""
    return len(rollout.ids) - rollout.prompt_len


def was_truncated(rollout: Rollout) -> bool:
    """Whether the rollout cut the episode at its length cap (its last turn may be unfinished)."""
    return rollout.episode.stop_reason == "length_cap"


class ResponseShaping:
    """The shaping ``algorithm`` asks for, applied to rollouts (none without such methods)."""

    def __init__(self, algorithm: Any) -> None:
        self._rewards = getattr(algorithm, "reward_shaping", None)
        self._weights = getattr(algorithm, "sequence_weights", None)

    @property
    def active(self) -> bool:
        return callable(self._rewards) or callable(self._weights)

    @staticmethod
    def _shape(rollouts: Sequence[Rollout]) -> tuple[list[int], list[bool]]:
        return [response_length(r) for r in rollouts], [was_truncated(r) for r in rollouts]

    def penalties(self, rollouts: Sequence[Rollout]) -> torch.Tensor:
        """What each rollout's reward gets added (zeros without reward shaping)."""
        if not callable(self._rewards) or not rollouts:
            return torch.zeros(len(rollouts))
        return torch.as_tensor(self._rewards(*self._shape(rollouts)), dtype=torch.float32)

    def reward(self, rollout: Rollout) -> float:
        """The reward training sees: the verifier's plus the shaping."""
        return rollout.reward + float(self.penalties([rollout])[0])

    def weights(self, rollouts: Sequence[Rollout]) -> torch.Tensor:
        """Each rollout's loss-mask multiplier (ones without sequence weights)."""
        if not callable(self._weights) or not rollouts:
            return torch.ones(len(rollouts))
        return torch.as_tensor(self._weights(*self._shape(rollouts)), dtype=torch.float32)
