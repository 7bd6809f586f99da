"""Options of the tool-call parsers (the table under a ``parser = {name = ...}`` choice)."""

from __future__ import annotations

import attrs

from astra_core.options import option


@attrs.frozen
class HermesOptions:
    """Hermes/Qwen ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks."""

    accept_unclosed: bool = option(
        "read a final block that lacks </tool_call> as a call when its JSON is complete (servers "
        "that stop on </tool_call> strip it); otherwise it is an error",
        False,
    )
    keep_malformed_in_content: bool = option(
        "keep the text of malformed blocks in the content (it is always quoted in the error)",
        False,
    )
    string_arguments: bool = option(
        'accept "arguments" given as a JSON string that holds an object (double-encoded)', True
    )


@attrs.frozen
class JSONCallsOptions:
    """A bare JSON list of calls (or one call object), optionally after prose or in a fence."""

    string_arguments: bool = option(
        'accept "arguments" given as a JSON string that holds an object (double-encoded)', True
    )
