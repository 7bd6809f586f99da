"""Random draws of sampled rollouts that belong to an episode, not to a batch.

``torch.multinomial`` over a batch draws each row's token from one stream shared by the rows,
so what an episode samples depends on which other episodes share its forward passes and in
which order their turns join them. Here the ``n``-th token an episode samples in a rollout comes
from its own uniform number, a hash of (the rollout's seed, the episode's row, ``n``), turned
into a token by the inverse of the distribution's CDF: an episode's draws are the same whatever
else is decoded with it and whenever its turns run. The rollout's seed is drawn from torch's
global generator, so a rollout seeded with ``torch.manual_seed`` is reproducible, and two
rollouts in a row differ.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def mix64(x: int) -> int:
    """SplitMix64's finaliser: a 64-bit integer hashed to another, uniformly spread."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & _MASK
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK
    return x ^ (x >> 31)


class EpisodeDraws:
    """Per-episode uniform draws of one rollout (see the module docstring)."""

    def __init__(self, seed: int | None = None) -> None:
        if seed is None:  # from the global generator: torch.manual_seed makes it reproducible
            seed = int(torch.randint(0, 1 << 62, (), dtype=torch.long))
        self.seed = seed & _MASK
        self._rows: dict[int, int] = {}

    def row_seed(self, row: int) -> int:
        seed = self._rows.get(row)
        if seed is None:
            seed = self._rows[row] = mix64((self.seed + (row + 1) * _GOLDEN) & _MASK)
        return seed

    def uniform(self, row: int, n: int) -> float:
        """The ``n``-th draw of episode ``row``, in [0, 1)."""
        return (mix64((self.row_seed(row) + (n + 1) * _GOLDEN) & _MASK) >> 11) * 2.0**-53

    def tokens(
        self, scores: torch.Tensor, rows: Sequence[int], counts: Sequence[int]
    ) -> torch.Tensor:
        """One token per row of ``scores`` (logits after temperature, top-k and top-p;
        ``-inf`` where cut off), drawn with episode ``rows[i]``'s ``counts[i]``-th uniform."""
        probs = scores.float().softmax(-1)
        cdf = probs.cumsum(-1)
        u = torch.tensor(
            [self.uniform(r, n) for r, n in zip(rows, counts, strict=True)],
            dtype=cdf.dtype,
            device=cdf.device,
        )
        # the first token whose cumulative probability exceeds u (scaled to the row's total,
        # which rounding keeps a hair from 1): a token of probability 0 is never it
        picked = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).squeeze(-1)
        picked = picked.clamp_max(scores.shape[-1] - 1)
        # past the last token with probability > 0 (u rounded up to the total): the likeliest
        zero = probs.gather(-1, picked[:, None]).squeeze(-1) <= 0
        return torch.where(zero, probs.argmax(-1), picked)
