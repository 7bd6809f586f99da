"""The turns of a tokenized conversation, read from its loss mask.

SFT and RL both keep a per-token mask that is nonzero on the tokens an assistant turn produced.
Tool outputs and template tokens sit between any two turns, so each run of nonzero entries is one
assistant turn, in order: the SFT trainer uses this to drop weight-0 turns from the loss and the
RL trainer to give each turn its own advantage.
"""

from __future__ import annotations

from collections.abc import Sequence


def turn_runs(mask: Sequence[float]) -> list[tuple[int, int]]:
    """``(start, end)`` of each run of nonzero entries of ``mask``, in order."""
    runs: list[tuple[int, int]] = []
    for t, m in enumerate(mask):
        if m and (t == 0 or not mask[t - 1]):
            runs.append((t, t + 1))
        elif m:
            runs[-1] = (runs[-1][0], t + 1)
    return runs
