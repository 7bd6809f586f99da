"""Merging homogeneous tools of one arena (paper §2.2.4).

Sub-questions answered by the same template (same relation: "population of X", "population of
Y") get one tool whose data table is the union of theirs. The first member is the base; the
others are inserted one at a time and after each insertion every gold call of the arena is run
again in the sandbox. One failing call rejects the merge (and the arena), as in the paper.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import attrs

from astra_arenas.tool_code import ToolDraft
from astra_core.arena_verification import CheckResult, GoldCheck
from astra_core.records import ToolCall

# Runs checks against code units and reports each (``verification.run_checks`` bound to a sandbox).
CheckRunner = Callable[[Mapping[str, str], Sequence[GoldCheck]], list[CheckResult]]


class MergeError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@attrs.frozen
class GoldStep:
    """A tool-needing sub-question with its own verified tool draft and gold call."""

    id: str
    draft: ToolDraft
    call: ToolCall
    answer: str


@attrs.frozen
class MergedTool:
    draft: ToolDraft
    members: tuple[str, ...]  # sub-question ids it answers


def merge_homogeneous(
    steps: Sequence[GoldStep], run: CheckRunner, *, enabled: bool = True
) -> tuple[list[MergedTool], int]:
    """One tool per tool name; returns the tools and how many sandbox re-runs it took.

    With ``enabled=False`` steps that share a name are still merged (an arena cannot offer two
    tools of one name) but without the re-runs; callers then rely on the final replay.
    """
    groups: dict[str, list[GoldStep]] = {}
    for step in steps:
        groups.setdefault(step.draft.name, []).append(step)
    # Current units: a merged tool per group (named by the tool) plus the members still apart.
    merged: dict[str, MergedTool] = {
        name: MergedTool(members[0].draft, (members[0].id,)) for name, members in groups.items()
    }
    pending: dict[str, GoldStep] = {s.id: s for g in groups.values() for s in g[1:]}
    reruns = 0
    for name, members in groups.items():
        for step in members[1:]:
            current = merged[name]
            try:
                draft = current.draft.with_rows(step.draft.rows)
            except ValueError as exc:
                raise MergeError("merge-conflict", str(exc)) from exc
            merged[name] = MergedTool(draft, (*current.members, step.id))
            del pending[step.id]
            if not enabled:
                continue
            reruns += 1
            units, checks = _units_and_checks(merged, pending, steps)
            failed = [r for r in run(units, checks) if not r.passed]
            if failed:
                raise MergeError(
                    "merge-broke-call",
                    f"after merging {step.id} into {name}: "
                    + "; ".join(f"{r.key} ({r.reason})" for r in failed),
                )
    return list(merged.values()), reruns


def _units_and_checks(
    merged: Mapping[str, MergedTool], pending: Mapping[str, GoldStep], steps: Sequence[GoldStep]
) -> tuple[dict[str, str], list[GoldCheck]]:
    units = {f"tool:{name}": tool.draft.code() for name, tool in merged.items()}
    units.update({f"step:{sid}": step.draft.code() for sid, step in pending.items()})
    owner = {sid: f"tool:{name}" for name, tool in merged.items() for sid in tool.members}
    owner.update({sid: f"step:{sid}" for sid in pending})
    checks = [GoldCheck(s.id, owner[s.id], s.call, s.answer) for s in steps]
    return units, checks
