"""Tool calls written as text, the Hermes/Qwen way: ``<tool_call>{"name", "arguments"}``.

Used when the model or server has no native tool calling ("parsed" mode, local models): tools go
into the system prompt inside ``<tools></tools>``, the model answers with ``<tool_call>`` blocks
and tool results come back inside ``<tool_response>`` blocks. A configured ``tool_call_parser``
component replaces the parsing; this module is the built-in default.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from astra_core.protocols import ParsedTurn
from astra_core.records import ToolCall

HERMES_TOOLS_PROMPT = """# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{tools}
</tools>

For each function call, return a json object with function name and arguments within \
<tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call>"""

# A closed block, or an unclosed last one (servers often strip the stop string </tool_call>).
_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.S)


def render_tools_prompt(tools: Sequence[Mapping[str, Any]], template: str | None = None) -> str:
    lines = "\n".join(json.dumps(dict(t), ensure_ascii=False) for t in tools)
    # str.replace, not str.format: tool schemas and prompts are full of braces.
    return (template or HERMES_TOOLS_PROMPT).replace("{tools}", lines)


def _decode_call(raw: str) -> ToolCall:
    data = json.loads(raw)
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
        raise ValueError('a tool call is a JSON object with a string "name"')
    args: Any = data.get("arguments", data.get("parameters", {}))
    if isinstance(args, str):  # some models double-encode the arguments
        args = json.loads(args) if args.strip() else {}
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ValueError(f'"arguments" of {data["name"]!r} must be a JSON object')
    return ToolCall(name=data["name"], arguments=args)


def parse_hermes(text: str) -> ParsedTurn:
    """Split generated text into prose and calls; a malformed block stays in the prose (so the
    agent and the data keep what the model wrote) and is reported in ``errors``."""
    calls: list[ToolCall] = []
    errors: list[str] = []
    kept: list[str] = []
    last = 0
    for match in _BLOCK.finditer(text):
        kept.append(text[last : match.start()])
        last = match.end()
        body = match.group(1).strip()
        try:
            calls.append(_decode_call(body))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            errors.append(f"malformed <tool_call> {body[:200]!r}: {exc}")
            kept.append(match.group(0))
    kept.append(text[last:])
    return ParsedTurn(content="".join(kept).strip(), calls=tuple(calls), errors=tuple(errors))


def format_hermes(calls: Sequence[ToolCall]) -> str:
    return "\n".join(
        "<tool_call>\n"
        + json.dumps({"name": c.name, "arguments": c.arguments}, ensure_ascii=False)
        + "\n</tool_call>"
        for c in calls
    )
