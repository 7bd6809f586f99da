"""Options of the tool-call parsers (the table under a ``parser = {name = ...}`` choice)."""

from __future__ import annotations

from typing import Any

import attrs


def _opt(text: str, default: Any) -> Any:
    return attrs.field(default=default, metadata={"help": text})


@attrs.frozen
class HermesOptions:
    """Hermes/Qwen ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks."""

    accept_unclosed: bool = _opt(
        "read a final block that lacks </tool_call> as a call when its JSON is complete (servers "
        "that stop on </tool_call> strip it); otherwise it is an error",
        False,
    )
    keep_malformed_in_content: bool = _opt(
        "keep the text of malformed blocks in the content (it is always quoted in the error)",
        False,
    )
    string_arguments: bool = _opt(
        'accept "arguments" given as a JSON string that holds an object (double-encoded)', True
    )


@attrs.frozen
class JSONCallsOptions:
    """A bare JSON list of calls (or one call object), optionally after prose or in a fence."""

    string_arguments: bool = _opt(
        'accept "arguments" given as a JSON string that holds an object (double-encoded)', True
    )
