"""Turn-level credit (the RL trainer's ``turn_credit`` option).

An episode's reward says that the episode went well, not which of its turns did: GRPO gives
every sampled token of an episode the same advantage, so a turn that miscopied a name is
reinforced along with the turn that copied the next one right. With ``turn_credit = c`` each
turn that made calls gets, on top of the episode's advantage, ``c`` times an advantage of its
own: its calls' mean credit (from a ``CallCreditVerifier``) normalised against the other
call-making turns of the group. A turn without calls (the final answer) gets the episode's
advantage only. This is MT-GRPO's turn-level advantage (Zeng et al., 2025), with the verifier's
per-call credit as the turn reward.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from astra_training.rollout import Rollout
from astra_training.turn_masks import turn_runs


def turn_spans(rollout: Rollout) -> list[tuple[int, int, int]]:
    """``(start, end, calls)`` for each turn of the episode: the turn's sampled ids are
    ``ids[start:end]`` and it made ``calls`` calls (malformed ones included, as the verifier
    counts them)."""
    spans = turn_runs(rollout.mask)
    # each assistant message is one turn; the tool messages after it are its calls' responses
    calls: list[int] = []
    for message in rollout.episode.messages:
        if message.get("role") == "assistant":
            calls.append(0)
        elif message.get("role") == "tool" and calls:
            calls[-1] += 1
    if len(calls) != len(spans) or sum(calls) != len(rollout.call_credit):
        raise ValueError(
            f"episode of arena {rollout.episode.arena_id}: {len(spans)} sampled spans and "
            f"{len(calls)} assistant turns with {sum(calls)} calls, against "
            f"{len(rollout.call_credit)} call credits: cannot tell which turn made which call"
        )
    return [(s, e, n) for (s, e), n in zip(spans, calls, strict=True)]


def _turn_scores(rollout: Rollout) -> list[tuple[int, int, float | None]]:
    """Each turn's span and its calls' mean credit (None for a turn without calls)."""
    out: list[tuple[int, int, float | None]] = []
    seen = 0
    for start, end, n in turn_spans(rollout):
        credit = rollout.call_credit[seen : seen + n]
        seen += n
        out.append((start, end, sum(credit) / n if n else None))
    return out


def token_advantages(
    groups: Sequence[Sequence[Rollout]], advantages: torch.Tensor, coef: float
) -> list[torch.Tensor]:
    """Per-id advantages of every rollout (the groups' rollouts in order; ``advantages`` holds
    their episode advantages, flat): the episode's advantage on every id, plus ``coef`` times
    the turn's normalised score on the ids the turn sampled. Only ids the loss mask keeps are
    trained on, so the value elsewhere does not matter."""
    out: list[torch.Tensor] = []
    flat = advantages.reshape(-1).tolist()
    row = 0
    for group in groups:
        scored = [_turn_scores(r) for r in group]
        values = [s for turns in scored for _, _, s in turns if s is not None]
        mean = sum(values) / len(values) if values else 0.0
        std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5 if values else 0.0
        for rollout, turns in zip(group, scored, strict=True):
            adv = torch.full((len(rollout.ids),), float(flat[row]))
            row += 1
            if std <= 1e-6:
                out.append(adv)  # every turn did as well as every other: no turn signal
                continue
            for start, end, score in turns:
                if score is not None:
                    adv[start:end] += coef * (score - mean) / std
            out.append(adv)
    return out


def padded_advantages(rows: Sequence[torch.Tensor], width: int) -> torch.Tensor:
    """Per-id advantages of a micro-batch padded to ``width`` ids, shifted as the log-probs
    are (the log-prob at position j is that of id j + 1): shape ``(rows, width - 1)``."""
    out = torch.zeros(len(rows), width)
    for i, adv in enumerate(rows):
        out[i, : len(adv)] = adv
    return out[:, 1:]
