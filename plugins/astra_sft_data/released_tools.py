"""The tools of a released SFT row as OpenAI tools, and the error a row that cannot be read
raises."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from astra_core.errors import AstraError
from astra_core.records import JSONDict


class SftImportError(AstraError):
    """A file or row that cannot be imported; the message names the file, line and field."""


def openai_tool(raw: Any, where: str, field: str) -> JSONDict:
    """An OpenAI tool schema from an OpenAI tool or a bare ``tool_list`` entry."""
    if not isinstance(raw, Mapping):
        raise SftImportError(f"{where}: {field} holds a {type(raw).__name__}, not a tool object")
    function = raw.get("function")
    inner: Mapping[str, Any] = function if isinstance(function, Mapping) else raw
    name = inner.get("name")
    if not isinstance(name, str) or not name:
        raise SftImportError(f"{where}: a tool in {field} has no name")
    parameters = None
    for key in ("parameters", "inputSchema", "input_schema"):
        if isinstance(inner.get(key), Mapping):
            parameters = dict(inner[key])
            break
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": str(inner.get("description") or ""),
            "parameters": parameters or {"type": "object", "properties": {}},
        },
    }
