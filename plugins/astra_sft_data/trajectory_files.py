"""Reading trajectory datasets (a stage directory or one JSONL file), checking them, and writing
exports atomically."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import attrs

from astra_core.records import JSONDict, Trajectory
from astra_core.row_files import replaced_whole
from astra_core.store import read_records
from astra_sft_data.trajectory_checks import Problem, check_trajectory


def read_trajectories(path: str | Path) -> Iterator[Trajectory]:
    """The trajectories of a stage directory (``data-*.jsonl`` shards, as ``astra run`` and
    ``astra sft-data import`` write them) or of one JSONL file of trajectory records."""
    return read_records(path, Trajectory)


@attrs.define
class CheckReport:
    """What ``astra sft-data check`` prints: counts, and the problems by trajectory."""

    trajectories: int = 0
    statuses: Counter[str] = attrs.Factory(Counter)
    messages: int = 0
    tool_calls: int = 0
    tools_called: set[str] = attrs.Factory(set)
    problems: dict[str, list[Problem]] = attrs.Factory(dict)  # trajectory id -> problems

    @property
    def invalid(self) -> int:
        return len(self.problems)

    def kinds(self) -> dict[str, int]:
        counts: Counter[str] = Counter(p.kind for ps in self.problems.values() for p in ps)
        return dict(counts.most_common())

    def to_dict(self, show: int) -> JSONDict:
        listed = [
            {"id": rid, "problems": [str(p) for p in ps]}
            for rid, ps in list(self.problems.items())[:show]
        ]
        return {
            "trajectories": self.trajectories,
            "status": dict(self.statuses),
            "messages": self.messages,
            "tool_calls": self.tool_calls,
            "distinct_tools_called": len(self.tools_called),
            "invalid": self.invalid,
            "problem_kinds": self.kinds(),
            "problems": listed,
        }


def check_dataset(trajectories: Iterable[Trajectory]) -> CheckReport:
    report = CheckReport()
    for traj in trajectories:
        report.trajectories += 1
        report.statuses[traj.status] += 1
        report.messages += len(traj.messages)
        for call in traj.tool_calls:
            report.tool_calls += 1
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                report.tools_called.add(function["name"])
        problems = check_trajectory(traj)
        if problems:
            report.problems[traj.id] = problems
    return report


@attrs.frozen
class ExportSummary:
    exported: int
    skipped_invalid: int
    skipped_failed: int
    first_problem: str | None
    out_path: str


def export_rows(
    trajectories: Iterable[Trajectory],
    out_path: str | Path,
    convert: Callable[[Trajectory], JSONDict],
) -> ExportSummary:
    """Write ``convert(traj)`` for every valid trajectory with status ``ok`` to ``out_path``
    (JSONL, replaced whole at the end); invalid and failed ones are counted, not written."""
    target = Path(out_path)
    exported = invalid = failed = 0
    first_problem: str | None = None
    with replaced_whole(target) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for traj in trajectories:
            if traj.status != "ok":
                failed += 1
                continue
            problems = check_trajectory(traj)
            if problems:
                invalid += 1
                first_problem = first_problem or f"{traj.id}: {problems[0]}"
                continue
            fh.write(json.dumps(convert(traj), ensure_ascii=False) + "\n")
            exported += 1
        fh.flush()
        os.fsync(fh.fileno())
    return ExportSummary(exported, invalid, failed, first_problem, str(target))
