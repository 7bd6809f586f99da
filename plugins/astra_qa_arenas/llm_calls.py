"""The generator's LLM as each step sees it: counted per step, JSON answers asked again once.

``StepLLM`` wraps the one backend of a run and counts, for its step, the calls, the tokens the
backend reported and the answers a response cache gave (``ChatResponse.cached``).
``ask_json`` asks for one JSON value: an answer that does not parse, or fails the schema or the
step's own check, is shown back to the LLM with the error, once; a second failure (or a call
that failed after the backend's retries) rejects the item with ``<step>-malformed`` (or
``<step>-llm-failed``). An answer the server cut at its token limit (``finish_reason``
``length``) says so in the error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from astra_core.errors import LLMCallFailed, StepRejected
from astra_core.llm_json import MalformedAnswer, parse_answer
from astra_core.protocols import ChatResponse, LLMBackend
from astra_qa_arenas.prompts import RETRY, fill

CUT_OFF = "the answer was cut off at the token limit: answer more briefly"
COUNTERS = ("calls", "prompt_tokens", "completion_tokens", "cache_hits", "failures", "retries")


class LLMUsage:
    """Counters per step, shared by every thread of a run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_step: dict[str, dict[str, int]] = {}

    def add(self, step: str, **counts: int) -> None:
        with self._lock:
            row = self.by_step.setdefault(step, dict.fromkeys(COUNTERS, 0))
            for key, n in counts.items():
                row[key] += n

    def flat(self) -> dict[str, int]:
        """``llm.<step>.<counter>`` for the manifest, plus totals over the steps."""
        with self._lock:
            out = {
                f"llm.{s}.{k}": v for s, row in sorted(self.by_step.items()) for k, v in row.items()
            }
            for key in COUNTERS:
                out[f"llm.total.{key}"] = sum(row[key] for row in self.by_step.values())
        return out


class StepLLM:
    """An ``LLMBackend`` that counts what ``step`` asked of ``llm``."""

    def __init__(
        self, llm: LLMBackend, step: str, usage: LLMUsage, sampling: Mapping[str, Any]
    ) -> None:
        self.llm = llm
        self.step = step
        self.usage = usage
        self.sampling = dict(sampling)

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        **sampling: Any,
    ) -> ChatResponse:
        try:
            response = self.llm.chat(messages, tools=tools, **{**self.sampling, **sampling})
        except LLMCallFailed:
            self.usage.add(self.step, calls=1, failures=1)
            raise
        usage = response.usage or {}
        self.usage.add(
            self.step,
            calls=1,
            prompt_tokens=int(usage.get("prompt_tokens", 0) or 0),
            completion_tokens=int(usage.get("completion_tokens", 0) or 0),
            cache_hits=int(bool(getattr(response, "cached", False))),
        )
        return response


def ask_json(
    llm: LLMBackend,
    messages: Sequence[Mapping[str, Any]],
    *,
    schema: Mapping[str, Any],
    step: str,
    check: Callable[[Any], None] | None = None,
) -> Any:
    """The JSON answer to ``messages``, valid against ``schema`` and ``check`` (which raises
    ``MalformedAnswer`` to have the LLM asked again); see the module docstring."""
    chat = [dict(m) for m in messages]
    for attempt in range(2):
        try:
            response = llm.chat(chat)
        except LLMCallFailed as exc:
            raise StepRejected(f"{step}-llm-failed", str(exc)) from exc
        content = str(response.message.get("content") or "")
        try:
            value = parse_answer(content, schema, step)
            if check is not None:
                check(value)
            return value
        except MalformedAnswer as exc:
            error = str(exc)
            if response.finish_reason == "length":  # say why, to the LLM and in dropped.jsonl
                error += f" ({CUT_OFF})"
            if attempt:
                raise StepRejected(f"{step}-malformed", f"after one retry: {error}") from exc
            if isinstance(llm, StepLLM):
                llm.usage.add(llm.step, retries=1)
            chat += [
                {"role": "assistant", "content": content},
                {"role": "user", "content": fill(RETRY, error=error)},
            ]
    raise AssertionError("unreachable")
