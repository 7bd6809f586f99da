"""Stage summaries and the run report (``report.json`` and ``report.md``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from astra_core.store import write_json_atomic

__all__ = ["RunReport", "StageSummary"]


@attrs.frozen
class StageSummary:
    """What one stage did: records written (this attempt and in total), drops by reason, the
    metrics a trainer returned, and how long it took."""

    stage: str
    status: str  # "complete" or "failed"
    out_dir: str
    written: int = 0
    existing: int = 0
    total: int = 0
    dropped: dict[str, int] = attrs.Factory(dict)
    metrics: dict[str, Any] = attrs.Factory(dict)
    started_at: str = ""
    ended_at: str = ""
    duration_s: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class RunReport:
    """What ``astra run`` returns and writes as ``report.json``: one summary per stage."""

    name: str
    config: str | None
    seed: int
    out_dir: str
    stages: tuple[StageSummary, ...]
    sections: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "config": self.config,
            "seed": self.seed,
            "out_dir": self.out_dir,
            "stages": [s.to_dict() for s in self.stages],
        }

    def stage(self, name: str) -> StageSummary:
        for s in self.stages:
            if s.stage == name:
                return s
        raise KeyError(name)

    def write(self, out_dir: str | Path) -> None:
        out = Path(out_dir)
        write_json_atomic(out / "report.json", self.to_dict())
        (out / "report.md").write_text(self.to_markdown(), encoding="utf-8")

    def to_markdown(self) -> str:
        lines = [
            f"# ASTRA run `{self.name}`",
            "",
            f"Config: `{self.config}` · seed {self.seed} · output `{self.out_dir}`",
            "",
            "| stage | status | records (total) | new this run | dropped | time (s) |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for s in self.stages:
            lines.append(
                f"| {s.stage} | {s.status} | {s.total} | {s.written} | "
                f"{sum(s.dropped.values())} | {s.duration_s:.1f} |"
            )
        for s in self.stages:
            if s.dropped:
                lines += ["", f"## {s.stage}: dropped", "", "| reason | count |", "|---|---:|"]
                lines += [f"| {reason} | {n} |" for reason, n in sorted(s.dropped.items())]
            if s.metrics:
                lines += ["", f"## {s.stage}: metrics", "", "| metric | value |", "|---|---:|"]
                for key, value in s.metrics.items():
                    if isinstance(value, float):
                        value = f"{value:.4g}"
                    if isinstance(value, (dict, list)):
                        continue
                    lines.append(f"| {key} | {value} |")
            if s.error:
                lines += ["", f"## {s.stage}: error", "", f"```\n{s.error}\n```"]
        for section in self.sections:
            lines += ["", section.strip()]
        return "\n".join(lines) + "\n"
