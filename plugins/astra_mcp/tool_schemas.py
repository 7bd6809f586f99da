"""MCP tools (``tools/list`` entries) as OpenAI tool schemas, and call results as text.

``inputSchema`` becomes ``parameters`` through the catalog's normaliser (the same checks and
drop reasons as tool files); ``outputSchema``, when a server publishes one, is kept with its
local ``$ref``s inlined so the schema-flow graph builder can see the fields a tool returns.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from astra_core.records import JSONDict
from astra_core.tool_normalisation import normalise_tool

# the depth past which recursive output schemas are left as they are
MAX_REF_DEPTH = 8


@attrs.frozen
class ConvertedTool:
    schema: JSONDict  # OpenAI {"type": "function", "function": {...}}
    returns: JSONDict | None  # the output schema, local $refs inlined
    annotations: JSONDict  # MCP hints: readOnlyHint, destructiveHint, ...

    @property
    def name(self) -> str:
        return str(self.schema["function"]["name"])


def inline_refs(schema: Mapping[str, Any]) -> JSONDict:
    """``schema`` with ``{"$ref": "#/$defs/X"}`` (and ``#/definitions/X``) replaced by the
    definition, down to ``MAX_REF_DEPTH`` (recursive models stop there)."""
    root = copy.deepcopy(dict(schema))
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        found = root.pop(key, None)
        if isinstance(found, Mapping):
            defs.update({f"#/{key}/{name}": value for name, value in found.items()})

    def walk(node: Any, depth: int) -> Any:
        if isinstance(node, Mapping):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref in defs and depth < MAX_REF_DEPTH:
                merged = {**defs[ref], **{k: v for k, v in node.items() if k != "$ref"}}
                return walk(merged, depth + 1)
            return {k: walk(v, depth) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, depth) for v in node]
        return node

    out = walk(root, 0)
    assert isinstance(out, dict)
    return out


def convert_tool(tool: Mapping[str, Any], *, min_description_words: int = 0) -> ConvertedTool:
    """An MCP tool as an OpenAI schema; the catalog's ``ToolRejected`` (with its drop reason)
    when it does not convert or its description is vague."""
    normalised = normalise_tool(
        {k: v for k, v in tool.items() if k != "outputSchema"},
        min_description_words=min_description_words,
    )
    returns = tool.get("outputSchema")
    annotations = tool.get("annotations")
    return ConvertedTool(
        schema=normalised.schema,
        returns=inline_refs(returns) if isinstance(returns, Mapping) else None,
        annotations=dict(annotations) if isinstance(annotations, Mapping) else {},
    )


def _content_text(item: Mapping[str, Any]) -> str:
    kind = item.get("type")
    if kind == "text":
        return str(item.get("text", ""))
    if kind in ("image", "audio"):
        data = item.get("data") or ""
        return f"[{kind} {item.get('mimeType', '?')}, {len(data)} base64 characters]"
    if kind == "resource":
        resource = item.get("resource") or {}
        if isinstance(resource, Mapping) and "text" in resource:
            return str(resource["text"])
        uri = resource.get("uri", "?") if isinstance(resource, Mapping) else "?"
        return f"[resource {uri}]"
    if kind == "resource_link":
        return f"[resource link {item.get('uri', '?')}]"
    return json.dumps(dict(item), ensure_ascii=False)


def result_text(result: Mapping[str, Any], *, max_chars: int = 8000) -> str:
    """What a ``CallToolResult`` says, as the text of a tool message: its content blocks joined
    (non-text blocks described), or the structured content as JSON when there is no text."""
    content = result.get("content")
    blocks: Sequence[Any] = content if isinstance(content, list) else []
    parts = [_content_text(b) for b in blocks if isinstance(b, Mapping)]
    text = "\n".join(p for p in parts if p)
    if not text and result.get("structuredContent") is not None:
        text = json.dumps(result["structuredContent"], ensure_ascii=False)
    if len(text) > max_chars:
        cut = len(text) - max_chars
        text = text[:max_chars] + f"\n[... {cut} more characters cut]"
    return text
