"""The ``subtask-f1`` verifier: the paper's trajectory reward (Eq. 29-31).

recall r = solved / needed sub-questions, precision p = solved / (calls + eps),
reward = 2pr / (p + r), 0 when both are 0. A needed sub-question is solved when the output of a
successful call contains its gold answer (matcher option). Every call counts, failed and
malformed ones included, so guessing and spamming calls cost precision.
"""

from __future__ import annotations

from collections.abc import Sequence

from astra_arenas.matching import matcher
from astra_arenas.options import SubtaskF1Options
from astra_core.records import Arena, Episode, Reward, SubQuestion, ToolCallResult
from astra_core.tool_errors import call_failed


class SubtaskF1Verifier:
    def __init__(self, options: SubtaskF1Options | None = None) -> None:
        self.options = options or SubtaskF1Options()
        self.match = matcher(self.options.matcher)

    def solves(self, call: ToolCallResult, sq: SubQuestion) -> bool:
        """Whether ``call`` solves ``sq``: it succeeded (neither raised nor answered with an
        error object; with the sub-question's own tool when ``require_tool_match``) and its
        output contains the gold answer."""
        return (
            not call_failed(call)
            and (not self.options.require_tool_match or call.name == sq.tool)
            and self.match(sq.answer, call.output)
        )

    def solved_ids(self, arena: Arena, calls: Sequence[ToolCallResult]) -> tuple[str, ...]:
        """Ids of the needed sub-questions some successful call's output answers, in order."""
        return tuple(sq.id for sq in arena.needed if any(self.solves(c, sq) for c in calls))

    def call_credit(self, arena: Arena, calls: Sequence[ToolCallResult]) -> tuple[float, ...]:
        """1.0 for each call that solves a needed sub-question no earlier call solved, else
        0.0: the calls that raised recall (failed, repeated and useless calls earn nothing)."""
        open_ = list(arena.needed)
        credit = []
        for call in calls:
            hits = [sq for sq in open_ if self.solves(call, sq)]
            open_ = [sq for sq in open_ if sq not in hits]
            credit.append(1.0 if hits else 0.0)
        return tuple(credit)

    def score(self, arena: Arena, episode: Episode) -> Reward:
        """The F1 reward of the episode's calls; ``success`` when every needed sub-question was
        solved (recall 1)."""
        calls = episode.calls
        needed = len(arena.needed)
        solved = self.solved_ids(arena, calls)
        n_calls = len(calls)
        errors = sum(1 for c in calls if call_failed(c))
        recall = len(solved) / needed if needed else 0.0
        precision = len(solved) / (n_calls + self.options.epsilon) if n_calls else 0.0
        precision = min(precision, 1.0)  # eps makes it a hair under 1; never above
        value = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        return Reward(
            value=value,
            recall=recall,
            precision=precision,
            solved=solved,
            calls=n_calls,
            success=needed > 0 and recall >= 1.0,
            parts={
                "recall": recall,
                "precision": precision,
                "needed": float(needed),
                "solved": float(len(solved)),
                "calls": float(n_calls),
                "error_calls": float(errors),
            },
        )
