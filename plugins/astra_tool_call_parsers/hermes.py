"""The Hermes/Qwen tool-call format: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``.

Parsing never raises: every malformed block (bad JSON, no name, arguments that are not an
object, a block that is never closed, a stray ``</tool_call>``) becomes one entry of
``ParsedTurn.errors`` and the rollout turns it into an error observation. Each block's JSON is
decoded before its end tag is looked for, so argument strings that contain ``</tool_call>`` or
``<tool_call>`` are read correctly and ``parse(format(calls))`` gives back ``calls`` exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from astra_core.protocols import ParsedTurn
from astra_core.records import ToolCall
from astra_tool_call_parsers.call_json import decode_calls, encode_call, preview
from astra_tool_call_parsers.options import HermesOptions

OPEN = "<tool_call>"
CLOSE = "</tool_call>"
_WHITESPACE = " \t\n\r"
_DECODER = json.JSONDecoder()


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WHITESPACE:
        pos += 1
    return pos


def join_content(parts: Sequence[str]) -> str:
    """The prose around the blocks: each piece stripped, empty pieces dropped, one newline
    between pieces."""
    return "\n".join(p.strip() for p in parts if p.strip())


class HermesParser:
    """Reads and writes ``<tool_call>`` JSON blocks (Hermes, Qwen2.5, Qwen3 templates)."""

    def __init__(self, options: HermesOptions | None = None) -> None:
        self.options = options or HermesOptions()

    def parse(self, text: str) -> ParsedTurn:
        calls: list[ToolCall] = []
        errors: list[str] = []
        content: list[str] = []
        pos = 0
        while pos <= len(text):
            start = text.find(OPEN, pos)
            prose = text[pos : start if start >= 0 else len(text)]
            if CLOSE in prose:
                errors.append(f"a stray {CLOSE} with no {OPEN} before it")
                prose = prose.replace(CLOSE, "")
            content.append(prose)
            if start < 0:
                break
            pos = self._block(text, start, calls, errors, content)
        return ParsedTurn(content=join_content(content), calls=tuple(calls), errors=tuple(errors))

    def _block(
        self, text: str, start: int, calls: list[ToolCall], errors: list[str], content: list[str]
    ) -> int:
        """Read the block opening at ``start``; return where the text after it begins."""
        body_start = start + len(OPEN)
        json_start = _skip_ws(text, body_start)
        problem = ""
        try:
            value, json_end = _DECODER.raw_decode(text, json_start)
        except json.JSONDecodeError as exc:
            problem = f"malformed JSON ({exc.msg} at offset {exc.pos - json_start})"
        else:
            after = _skip_ws(text, json_end)
            closed = text.startswith(CLOSE, after)
            if closed or (after == len(text) and self.options.accept_unclosed):
                found, bad = decode_calls(value, string_arguments=self.options.string_arguments)
                calls.extend(found)
                errors.extend(f"{OPEN} {preview(text[json_start:json_end])}: {e}" for e in bad)
                return after + len(CLOSE) if closed else len(text)
            if after < len(text):
                problem = "text after the JSON object, before " + CLOSE
        # Malformed: the block runs to its end tag, or (unclosed) to the next block or the end.
        close = text.find(CLOSE, body_start)
        reopen = text.find(OPEN, body_start)
        if close >= 0 and (reopen < 0 or close < reopen):
            end, resume = close, close + len(CLOSE)
        else:
            end = resume = reopen if reopen >= 0 else len(text)
            problem = problem if problem and problem.startswith("malformed") else ""
            problem = f"unclosed {OPEN} block" + (f", {problem}" if problem else "")
        body = text[body_start:end]
        errors.append(f"{problem}: {preview(body.strip())}")
        if self.options.keep_malformed_in_content:
            content.append(text[start:resume])
        return resume

    def format(self, calls: Sequence[ToolCall]) -> str:
        """One ``<tool_call>`` block per call, on its own lines, as Qwen's chat template writes
        them."""
        blocks = []
        for call in calls:
            try:
                blocks.append(f"{OPEN}\n{encode_call(call)}\n{CLOSE}")
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"tool_call_parser 'hermes': call {call.name!r} has arguments that are not "
                    f"JSON: {exc}"
                ) from exc
        return "\n".join(blocks)
