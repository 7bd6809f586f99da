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

    def made(self, s: StageSummary) -> str:
        """What stage ``s`` made, in words: its records (new, dropped), or what a trainer or an
        evaluator says in its metrics (steps, the model it saved, the arenas it evaluated)."""
        if _writes_records(s.stage):
            return f"{s.total} records ({s.written} new, {sum(s.dropped.values())} dropped)"
        return _made(s, Path(self.out_dir))

    def to_markdown(self) -> str:
        lines = [
            f"# ASTRA run `{self.name}`",
            "",
            f"Config: `{self.config}` · seed {self.seed} · output `{self.out_dir}`",
            "",
            "| stage | status | made | new this run | dropped | time (s) |",
            "|---|---|---|---:|---:|---:|",
        ]
        for s in self.stages:
            if _writes_records(s.stage):
                made = f"{s.total} records"
                new, dropped = str(s.written), str(sum(s.dropped.values()))
            else:  # a trainer or an evaluator: what its metrics say it made
                made, new, dropped = _made(s, Path(self.out_dir)), "-", "-"
            lines.append(
                f"| {s.stage} | {s.status} | {made} | {new} | {dropped} | {s.duration_s:.1f} |"
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


def _writes_records(stage: str) -> bool:
    from astra_core.stages import STAGE_CLASSES  # stages build on contexts that build on this

    cls = STAGE_CLASSES.get(stage)
    return cls is None or cls.record_cls is not None


def _made(summary: StageSummary, out_dir: Path) -> str:
    """What a stage without records made, from its metrics: ``steps`` (or the last ``step``),
    the ``model`` it saved (relative to the run), the ``arenas`` it evaluated."""
    m = summary.metrics
    parts = []
    steps = m.get("steps", m.get("step"))
    if isinstance(steps, (int, float)) and not isinstance(steps, bool):
        parts.append(f"{int(steps)} steps")
    model = m.get("model")
    if isinstance(model, str) and model:
        path = Path(model).resolve()
        if path.is_relative_to(out_dir.resolve()):
            path = path.relative_to(out_dir.resolve())
        parts.append(f"model `{path.as_posix()}`")
    arenas = m.get("arenas")
    if isinstance(arenas, (int, float)) and not isinstance(arenas, bool):
        parts.append(f"{int(arenas)} arenas evaluated")
    return ", ".join(parts) or "-"
