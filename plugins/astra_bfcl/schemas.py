"""BFCL function docs as OpenAI tool schemas.

Mirrors bfcl-eval's own conversion for OpenAI-style models (``model_handler.utils.
convert_to_tool`` with ``GORILLA_TO_OPENAPI``, which we cannot import without its heavy
dependencies): ``dict`` -> ``object``, ``float`` -> ``number`` with ``format: float`` and
" This is a float type value." appended to the description, unknown types -> ``string``, nested
properties and array items converted too. BFCL's ``response`` block (what the call returns) is
not part of an OpenAI schema and is dropped.
"""

from __future__ import annotations

import copy
from typing import Any

from astra_core.records import JSONDict

# bfcl_eval.constants.type_mappings.GORILLA_TO_OPENAPI (copied: a plain table, so that schemas
# can be converted and tested without importing bfcl-eval).
GORILLA_TO_OPENAPI: dict[str, str] = {
    "integer": "integer",
    "number": "number",
    "float": "number",
    "string": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "dict": "object",
    "object": "object",
    "tuple": "array",
    "any": "string",
    "byte": "integer",
    "short": "integer",
    "long": "integer",
    "double": "number",
    "char": "string",
    "ArrayList": "array",
    "Array": "array",
    "HashMap": "object",
    "Hashtable": "object",
    "Queue": "array",
    "Stack": "array",
    "Any": "string",
    "String": "string",
    "Bigint": "integer",
}


def _convert(schema: JSONDict) -> JSONDict:
    out = dict(schema)
    kind = out.get("type")
    if kind is None:
        out["type"] = "string"
    else:
        if kind == "float":
            out["format"] = "float"
            out["description"] = str(out.get("description", "")) + " This is a float type value."
        out["type"] = GORILLA_TO_OPENAPI.get(str(kind), "string")
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _convert(v) for k, v in out["properties"].items()}
    if isinstance(out.get("items"), dict):
        out["items"] = _convert_items(out["items"])
    return out


def _convert_items(schema: JSONDict) -> JSONDict:
    # BFCL maps only the type of array items (and of their items or properties).
    out = dict(schema)
    out["type"] = GORILLA_TO_OPENAPI.get(str(out.get("type", "string")), "string")
    if isinstance(out.get("items"), dict):
        out["items"] = _convert_items(out["items"])
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _convert(v) for k, v in out["properties"].items()}
    return out


def openai_tool(doc: JSONDict) -> JSONDict:
    """One BFCL function doc as ``{"type": "function", "function": {...}}``."""
    params = copy.deepcopy(doc.get("parameters") or {})
    properties = params.get("properties") or {}
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {k: _convert(v) for k, v in properties.items()},
        "required": list(params.get("required") or []),
    }
    return {
        "type": "function",
        "function": {
            "name": str(doc["name"]),
            "description": str(doc.get("description", "")),
            "parameters": parameters,
        },
    }
