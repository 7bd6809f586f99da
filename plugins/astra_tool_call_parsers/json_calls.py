"""Tool calls as a bare JSON list (``[{"name": ..., "arguments": {...}}, ...]``) or one call
object, at the end of the turn, possibly after prose and possibly in a ```json fence."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from astra_core.protocols import ParsedTurn
from astra_core.records import ToolCall
from astra_tool_call_parsers.call_json import decode_calls, encode_call, preview
from astra_tool_call_parsers.options import JSONCallsOptions

_DECODER = json.JSONDecoder()
_FENCE = re.compile(r"```(?:json)?\s*(.*?)\s*```\s*\Z", re.S)
# Where a trailing JSON value may start; bounded so a long prose turn costs little.
_MAX_STARTS = 64


def _looks_like_calls(value: Any) -> bool:
    if isinstance(value, dict):
        return "name" in value
    return isinstance(value, list) and all(isinstance(v, dict) and "name" in v for v in value)


class JSONCallsParser:
    """Reads a trailing JSON list of calls; text before it is the content. A JSON value that
    is not call-shaped (e.g. a JSON answer) stays content; a turn that starts like a call list
    but does not decode is an error."""

    def __init__(self, options: JSONCallsOptions | None = None) -> None:
        self.options = options or JSONCallsOptions()

    def parse(self, text: str) -> ParsedTurn:
        body, prefix = text.strip(), ""
        fence = _FENCE.search(body)
        if fence is not None:
            prefix, body = body[: fence.start()], fence.group(1)
        starts = [i for i, ch in enumerate(body) if ch in "[{"][:_MAX_STARTS]
        for start in starts:
            try:
                value, end = _DECODER.raw_decode(body, start)
            except json.JSONDecodeError:
                continue
            if body[end:].strip() or not _looks_like_calls(value):
                continue
            if value == []:  # "no calls"
                return ParsedTurn(content=(prefix + body[:start]).strip())
            calls, errors = decode_calls(value, string_arguments=self.options.string_arguments)
            content = (prefix + body[:start]).strip()
            return ParsedTurn(content=content, calls=tuple(calls), errors=tuple(errors))
        stripped = body.lstrip()
        starts_like_calls = stripped.startswith(("[{", '{"name"'))
        if starts_like_calls or (stripped.startswith("[") and '"name"' in body):
            return ParsedTurn(
                content=prefix.strip(),
                errors=(f"malformed JSON tool calls: {preview(stripped)}",),
            )
        return ParsedTurn(content=text.strip())

    def format(self, calls: Sequence[ToolCall]) -> str:
        if not calls:
            return ""
        try:
            return "[" + ", ".join(encode_call(c) for c in calls) + "]"
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"tool_call_parser 'json': arguments that are not JSON: {exc}"
            ) from exc
