"""Asking an LLM for JSON and reading its answer, with errors that say what was wrong.

Every synthesis prompt asks for one JSON value and comes with a JSON Schema of the expected
answer (``prompts.py``); the answer is read by ``astra_core.llm_json`` (leniently, then checked
strictly against the schema). A call that fails after the backend's retries (``LLMCallFailed``)
or an answer that does not parse or validate becomes ``StepFailed`` with the reason
``<step>-llm-failed`` or ``<step>-malformed``: the item is dropped (or its record failed) and the
run goes on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from astra_core.errors import LLMCallFailed
from astra_core.llm_json import MalformedAnswer, answer_text, extract_json, parse_answer
from astra_core.protocols import LLMBackend
from astra_trajectories.step_outcomes import StepFailed

__all__ = ["MalformedAnswer", "answer_text", "ask", "extract_json", "parse_answer"]


def ask(
    llm: LLMBackend,
    messages: Sequence[Mapping[str, Any]],
    *,
    schema: Mapping[str, Any],
    step: str,
    sampling: Mapping[str, Any] | None = None,
) -> Any:
    """One chat call whose answer must be JSON matching ``schema``; see the module docstring."""
    try:
        response = llm.chat(messages, **dict(sampling or {}))
    except LLMCallFailed as exc:
        raise StepFailed(f"{step}-llm-failed", str(exc)) from exc
    try:
        return parse_answer(str(response.message.get("content") or ""), schema, step)
    except MalformedAnswer as exc:
        raise StepFailed(f"{step}-malformed", str(exc)) from exc
