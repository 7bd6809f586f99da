"""Turning a decoded JSON value into tool calls, with one error message per bad call."""

from __future__ import annotations

import json
from typing import Any

from astra_core.records import ToolCall


def decode_call(value: Any, *, string_arguments: bool) -> ToolCall:
    """A ``ToolCall`` from ``{"name": str, "arguments": {...}}`` or a ValueError saying what is
    wrong. Missing or null arguments mean no arguments; ``parameters`` is accepted as an alias
    (some models were trained with it)."""
    if not isinstance(value, dict):
        raise ValueError(f"a tool call must be a JSON object, got {_kind(value)}")
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f'a tool call needs a non-empty string "name", got {name!r}')
    args: Any = value.get("arguments", value.get("parameters"))
    if args is None:
        args = {}
    if isinstance(args, str) and string_arguments:
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError as exc:
            raise ValueError(
                f'"arguments" of {name!r} is a string that is not JSON: {exc}'
            ) from None
    if not isinstance(args, dict):
        raise ValueError(f'"arguments" of {name!r} must be a JSON object, got {_kind(args)}')
    return ToolCall(name=name, arguments=args)


def decode_calls(value: Any, *, string_arguments: bool) -> tuple[list[ToolCall], list[str]]:
    """One call, or a list of calls; bad entries become error messages."""
    items = value if isinstance(value, list) else [value]
    if not items:
        return [], ["an empty list of tool calls"]
    calls: list[ToolCall] = []
    errors: list[str] = []
    for index, item in enumerate(items):
        try:
            calls.append(decode_call(item, string_arguments=string_arguments))
        except ValueError as exc:
            where = f"call {index}: " if isinstance(value, list) else ""
            errors.append(f"{where}{exc}")
    return calls, errors


def encode_call(call: ToolCall) -> str:
    return json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else "a value")


def preview(text: str, limit: int = 200) -> str:
    """The start of a piece of model output, quoted, for an error message."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
