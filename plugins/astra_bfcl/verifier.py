"""The ``bfcl-multi-turn`` verifier: BFCL's multi-turn checks as an RL reward.

``score(arena, episode)`` replays, in the sandbox, the agent's calls that ran (``error=False``)
and the ground truth on separate fresh instances, turn by turn, and judges every turn as
bfcl-eval's ``multi_turn_checker`` does:

* a turn whose ground truth is not empty must have at least one call
  (``multi_turn:empty_turn_model_response``), leave every involved instance with the same
  public attributes as the ground truth's instance (bfcl-eval's ``state_checker``,
  ``multi_turn:instance_state_mismatch``), and the ground truth's execution results must be an
  unordered subsequence of all the agent's results so far (bfcl-eval's ``response_checker``,
  ``multi_turn:execution_response_mismatch``);
* a turn whose ground truth is empty (the function or a parameter is missing) passes only when
  the agent made no call (``multi_turn_irrelevance_checker``'s rule; option
  ``check_irrelevance``).

BFCL stops at the first failing turn and scores the entry 0 or 1. Here every turn is judged
(state carries over, so a wrong state usually fails the later turns of that class too) and
``value`` = passed / judged turns: 1.0 exactly when BFCL would accept the entry
(``parts["bfcl_valid"]``).

Which call belongs to which turn: ``turn_ends`` if given (``BfclRuntime.turn_ends``), else the
``turn`` of each ``TurnCallResult``, else (option ``infer_turns``) the boundaries that pass the
most turns, else every call in the first turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import attrs

from astra_bfcl.options import BfclVerifierOptions
from astra_bfcl.replay import ReplayError, output_digest, payload_for, run_replays
from astra_bfcl.runtime import TRUNCATED
from astra_core.errors import AstraError
from astra_core.protocols import Sandbox
from astra_core.records import Arena, Episode, Reward, ToolCallResult


@attrs.frozen
class TurnVerdict:
    """BFCL's verdict on one turn; ``checked`` is False for skipped empty turns."""

    index: int
    checked: bool
    passed: bool
    calls: int
    error_type: str | None = None
    message: str = ""
    details: dict[str, Any] = attrs.Factory(dict)


@attrs.frozen
class BfclVerdict:
    """Everything the replay found (``score`` condenses it into a ``Reward``)."""

    turns: tuple[TurnVerdict, ...]
    turn_ends: tuple[int, ...]
    inferred: bool
    calls: int
    executed: int
    replay_mismatch: int

    @property
    def judged(self) -> tuple[TurnVerdict, ...]:
        return tuple(t for t in self.turns if t.checked)

    @property
    def passed(self) -> tuple[TurnVerdict, ...]:
        return tuple(t for t in self.judged if t.passed)

    @property
    def valid(self) -> bool:
        """What BFCL would say: every judged turn passes."""
        return len(self.passed) == len(self.judged)


class BfclMultiTurnVerifier:
    def __init__(self, options: BfclVerifierOptions, sandbox: Sandbox) -> None:
        self.options = options
        self.sandbox = sandbox

    def group(
        self, arena: Arena, calls: Sequence[ToolCallResult], turn_ends: Sequence[int] | None
    ) -> list[list[ToolCallResult]] | None:
        """The calls per turn, or ``None`` when the turns must be inferred."""
        n_turns = len(arena.metadata.get("ground_truth") or ())
        if turn_ends is not None:
            ends = list(turn_ends)
            if any(b < a for a, b in pairwise(ends)) or (
                ends and (ends[0] < 0 or ends[-1] > len(calls))
            ):
                raise AstraError(
                    f"arena {arena.id}: turn_ends {ends} must be non-decreasing and within the "
                    f"{len(calls)} calls"
                )
            if len(ends) > n_turns:
                raise AstraError(f"arena {arena.id}: {len(ends)} turn ends for {n_turns} turns")
            groups, start = [], 0
            for end in ends:
                groups.append(list(calls[start:end]))
                start = end
            if start < len(calls):  # calls after the last closed turn: the turn still open
                if len(groups) >= n_turns:
                    raise AstraError(
                        f"arena {arena.id}: {len(calls) - start} calls after the last turn"
                    )
                groups.append(list(calls[start:]))
            return groups
        marked = [getattr(c, "turn", None) for c in calls]
        if calls and all(isinstance(t, int) for t in marked):
            turns = [int(t) for t in marked if isinstance(t, int)]
            if any(b < a for a, b in pairwise(turns)) or not (
                turns[0] >= 0 and turns[-1] < n_turns
            ):
                raise AstraError(
                    f"arena {arena.id}: call turns {turns} must be non-decreasing, within "
                    f"0..{n_turns - 1}"
                )
            groups = [[] for _ in range(turns[-1] + 1)]
            for call, turn in zip(calls, turns, strict=True):
                groups[turn].append(call)
            return groups
        if self.options.infer_turns:
            return None
        return [list(calls)]

    def check(
        self,
        arena: Arena,
        calls: Sequence[ToolCallResult],
        *,
        turn_ends: Sequence[int] | None = None,
    ) -> BfclVerdict:
        """Replay and judge (see the module docstring)."""
        groups = self.group(arena, calls, turn_ends)

        def executed(items: Sequence[ToolCallResult]) -> list[ToolCallResult]:
            return [c for c in items if not c.error]

        if groups is None:
            ran = executed(calls)
            model: Any = [{"name": c.name, "arguments": dict(c.arguments)} for c in ran]
        else:
            ran = [c for g in groups for c in executed(g)]
            model = [
                [{"name": c.name, "arguments": dict(c.arguments)} for c in executed(g)]
                for g in groups
            ]
        payload = payload_for(
            arena,
            model=model,
            per_turn=groups is not None,
            check_irrelevance=self.options.check_irrelevance,
        )
        (outcome,) = run_replays(self.sandbox, [payload], timeout_s=self.options.timeout_s)
        if not outcome["ok"]:
            raise ReplayError(
                f"replaying arena {arena.id} (BFCL {payload['id']}) failed: {outcome['error']}"
                f"\n{outcome.get('traceback', '')}"
            )
        result = outcome["result"]
        mismatch = sum(
            1
            for call, replayed in zip(ran, result["model_digests"], strict=True)
            if not call.output.endswith(TRUNCATED) and output_digest(call.output) != replayed
        )
        verdicts = tuple(
            TurnVerdict(
                index=i,
                checked=bool(t["checked"]),
                passed=bool(t["passed"]),
                calls=int(t["calls"]),
                error_type=t.get("error_type"),
                message=str(t.get("message") or ""),
                details=dict(t.get("details") or {}),
            )
            for i, t in enumerate(result["turns"])
        )
        return BfclVerdict(
            turns=verdicts,
            turn_ends=tuple(result["splits"]),
            inferred=bool(result["inferred"]),
            calls=len(calls),
            executed=len(ran),
            replay_mismatch=mismatch,
        )

    def score(
        self,
        arena: Arena,
        episode: Episode,
        *,
        turn_ends: Sequence[int] | None = None,
    ) -> Reward:
        """Passed / judged turns; ``success`` exactly when BFCL would accept the entry."""
        verdict = self.check(arena, episode.calls, turn_ends=turn_ends)
        judged, passed = verdict.judged, verdict.passed
        value = len(passed) / len(judged) if judged else 0.0
        sub_ids = [sq.id for sq in arena.subquestions]
        solved = tuple(sub_ids[t.index] for t in passed if t.index < len(sub_ids))
        errors: dict[str, float] = {}
        for t in judged:
            if not t.passed and t.error_type:
                key = t.error_type.split(":")[1] if ":" in t.error_type else t.error_type
                errors[key] = errors.get(key, 0.0) + 1.0
        parts: dict[str, float] = {
            "turns": float(len(verdict.turns)),
            "judged_turns": float(len(judged)),
            "passed_turns": float(len(passed)),
            "bfcl_valid": 1.0 if verdict.valid else 0.0,
            "calls": float(verdict.calls),
            "executed_calls": float(verdict.executed),
            "error_calls": float(verdict.calls - verdict.executed),
            "inferred_turns": 1.0 if verdict.inferred else 0.0,
            "replay_mismatch": float(verdict.replay_mismatch),
            **{f"turn_{t.index}": 1.0 if t.passed else 0.0 for t in judged},
            **errors,
        }
        return Reward(
            value=value,
            recall=value,
            precision=verdict.executed / verdict.calls if verdict.calls else 0.0,
            solved=solved,
            calls=verdict.calls,
            parts=parts,
            success=verdict.valid,
        )
