"""A rule-based offline judge of trajectories.

It is NOT the paper's judge (seven scores given by an LLM); it checks by rules what can be
checked without one: every call names an offered tool, its arguments validate against that
tool's JSON Schema, every call is answered by a tool message, no tool returned an error, the
calls follow the task's chain, and a final answer is present and uses the last tool output.
Each check scores 1.0 (all good) down to 0.0; ``overall`` is their mean. A trajectory passes
only when every check is 1.0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import jsonschema

from astra_core.records import JSONDict, ToolCallResult, tool_name
from astra_core.tool_errors import is_error_output

if TYPE_CHECKING:
    from astra_core.registry import ComponentBuilder

CHECKS = (
    "offered_tools",
    "valid_arguments",
    "calls_answered",
    "no_tool_errors",
    "follows_chain",
    "final_answer",
)


@attrs.frozen
class Verdict:
    scores: dict[str, float]
    failed: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failed


def _fraction(good: int, total: int) -> float:
    return 1.0 if total == 0 else round(good / total, 4)


def _scalars(data: Any) -> list[str]:
    if isinstance(data, Mapping):
        return [s for v in data.values() for s in _scalars(v)]
    if isinstance(data, list):
        return [s for v in data[:3] for s in _scalars(v)]
    if isinstance(data, bool) or data is None:
        return []
    return [str(data)]


class RuleBasedJudge:
    """Scores a conversation by rules (see the module docstring)."""

    name: ClassVar[str] = "offline-rules"
    step: ClassVar[str] = "judge"

    def __init__(
        self,
        options: object = None,
        builder: ComponentBuilder | None = None,
    ) -> None:
        self._validators: dict[str, Any] = {}

    def _validator(self, tool: Mapping[str, Any]) -> Any:
        name = tool_name(tool)
        if name not in self._validators:
            schema = tool["function"].get("parameters") or {"type": "object"}
            cls = jsonschema.validators.validator_for(
                schema, default=jsonschema.Draft202012Validator
            )
            self._validators[name] = cls(schema)
        return self._validators[name]

    def judge(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[JSONDict],
        *,
        results: Sequence[ToolCallResult] = (),
        target_tools: Sequence[str] | None = None,
    ) -> Verdict:
        offered = {tool_name(t): t for t in tools}
        calls: list[tuple[int, Mapping[str, Any]]] = [
            (i, c) for i, m in enumerate(messages) for c in (m.get("tool_calls") or ())
        ]
        names = [str((c.get("function") or {}).get("name", "")) for _, c in calls]
        valid = 0
        for (_, call), name in zip(calls, names, strict=True):
            if name not in offered:
                continue
            raw = (call.get("function") or {}).get("arguments")
            try:
                arguments = json.loads(raw) if isinstance(raw, str) else None
            except json.JSONDecodeError:
                arguments = None
            if isinstance(arguments, dict) and self._validator(offered[name]).is_valid(arguments):
                valid += 1
        answered = 0
        for index, call in calls:
            replies = []
            for later in messages[index + 1 :]:
                if later.get("role") != "tool":
                    break
                if later.get("tool_call_id") == call.get("id"):
                    replies.append(later)
            answered += len(replies) == 1
        tool_messages = [m for m in messages if m.get("role") == "tool"]
        errors = sum(
            1
            for i, m in enumerate(tool_messages)
            if (i < len(results) and results[i].error) or is_error_output(m.get("content"))
        )
        last = messages[-1] if messages else {}
        final_ok = (
            last.get("role") == "assistant"
            and not last.get("tool_calls")
            and bool(str(last.get("content") or "").strip())
        )
        if final_ok and tool_messages:
            try:
                facts = _scalars(json.loads(str(tool_messages[-1].get("content"))))
            except json.JSONDecodeError:
                facts = []
            text = str(last.get("content"))
            final_ok = not facts or any(f in text for f in facts)
        scores = {
            "offered_tools": _fraction(sum(n in offered for n in names), len(calls)),
            "valid_arguments": _fraction(valid, len(calls)),
            "calls_answered": _fraction(answered, len(calls)),
            "no_tool_errors": _fraction(len(tool_messages) - errors, len(tool_messages)),
            "follows_chain": 1.0 if target_tools is None or list(target_tools) == names else 0.0,
            "final_answer": 1.0 if final_ok else 0.0,
        }
        scores["overall"] = round(sum(scores[c] for c in CHECKS) / len(CHECKS), 4)
        return Verdict(scores, tuple(c for c in CHECKS if scores[c] < 1.0))
