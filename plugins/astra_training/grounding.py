"""How many of an episode's call arguments were copied from what the episode had seen.

A name a call passes has to come from the question or from an earlier tool output; a small
model's commonest mistake on held-out arenas is a near-copy (``Qeirk Motors`` for ``Qul
Motors``), which the reward only shows as a sub-question missed. The share of string arguments
found verbatim in an earlier user or tool message measures the copying itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any


def copied_arguments(messages: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(string arguments found verbatim in an earlier user or tool message, all string
    arguments), over the tool calls of ``messages`` (OpenAI format, arguments as JSON text).
    Arguments that are not a JSON object count as none."""
    seen: list[str] = []
    copied = total = 0
    for message in messages:
        role = message.get("role")
        if role == "assistant":
            for call in message.get("tool_calls") or ():
                for value in _strings(_arguments(call)):
                    total += 1
                    copied += any(value in text for text in seen)
        elif role in ("user", "tool"):
            seen.append(str(message.get("content") or ""))
    return copied, total


def _arguments(call: Mapping[str, Any]) -> Any:
    raw = call.get("function", {}).get("arguments", {})
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return None
    return raw


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
