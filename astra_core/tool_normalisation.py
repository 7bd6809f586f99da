"""Turning tool documents of any common shape into OpenAI tool schemas, and the paper's
per-tool filters (vague descriptions, schemas that do not convert).

Every tool-graph source that reads tool documents (catalog files, live MCP servers, a
third-party source) normalises them here, so the same document becomes the same schema, or is
dropped for the same reason, whichever source read it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import attrs
import jsonschema

from astra_core.records import JSONDict

__all__ = [
    "NOT_CONVERTIBLE",
    "VAGUE",
    "NormalisedTool",
    "ToolRejected",
    "normalise_tool",
    "raw_tool_name",
]

FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PLACEHOLDERS = frozenset(
    {
        "",
        "todo",
        "tbd",
        "n/a",
        "na",
        "none",
        "null",
        "description",
        "no description",
        "test",
        "tool",
        "function",
        "placeholder",
        "...",
    }
)
NOT_CONVERTIBLE = "schema-not-convertible"
VAGUE = "vague-description"


class ToolRejected(Exception):
    """A tool document that fails a filter; ``reason`` is the drop reason counted in the
    manifest and ``detail`` says what was wrong."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@attrs.frozen
class NormalisedTool:
    """A tool document as an OpenAI schema, with its output schema (``returns``) when known."""

    schema: JSONDict  # {"type": "function", "function": {name, description, parameters}}
    returns: JSONDict | None  # output JSON Schema when the document has one

    @property
    def name(self) -> str:
        return str(self.schema["function"]["name"])


def raw_tool_name(raw: Any) -> str:
    """Best-effort name of a tool document, for drop ids of documents that do not convert."""
    if isinstance(raw, Mapping):
        function = raw.get("function")
        inner = function if isinstance(function, Mapping) else raw
        name = inner.get("name")
        if isinstance(name, str) and name:
            return name
    return "?"


def normalise_tool(raw: Any, *, min_description_words: int = 3) -> NormalisedTool:
    """An OpenAI tool schema from an OpenAI tool, an authors' ``tool_list`` entry or an MCP
    tool (``inputSchema``); raises ``ToolRejected`` with the paper's filter reason."""
    if not isinstance(raw, Mapping):
        raise ToolRejected(
            NOT_CONVERTIBLE, f"a tool must be a JSON object, got {type(raw).__name__}"
        )
    inner: Mapping[str, Any] = raw
    if "function" in raw:
        if not isinstance(raw["function"], Mapping):
            raise ToolRejected(NOT_CONVERTIBLE, '"function" must be an object')
        if raw.get("type", "function") != "function":
            raise ToolRejected(NOT_CONVERTIBLE, f"tool type {raw.get('type')!r} is not 'function'")
        inner = raw["function"]
    name = inner.get("name")
    if not isinstance(name, str) or not FUNCTION_NAME.match(name):
        raise ToolRejected(
            NOT_CONVERTIBLE,
            f"name {name!r} is not a function name (letters, digits, _ or -, at most 64)",
        )
    parameters = _first(inner, raw, keys=("parameters", "inputSchema", "input_schema"))
    parameters = _normalise_parameters(name, parameters)
    returns = _first(inner, raw, keys=("returns", "outputSchema", "output_schema"))
    if returns is not None:
        if not isinstance(returns, Mapping):
            raise ToolRejected(NOT_CONVERTIBLE, f"{name}: the output schema must be an object")
        _check_schema(name, returns, "output schema")
    description = inner.get("description")
    if description is not None and not isinstance(description, str):
        raise ToolRejected(NOT_CONVERTIBLE, f"{name}: description must be text")
    description = " ".join((description or "").split())
    vague = _vagueness(name, description, min_description_words)
    if vague:
        raise ToolRejected(VAGUE, f"{name}: {vague}")
    schema = {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }
    return NormalisedTool(schema, copy.deepcopy(dict(returns)) if returns is not None else None)


def _first(*sources: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for source in sources:
        for key in keys:
            if key in source:
                return source[key]
    return None


def _normalise_parameters(name: str, parameters: Any) -> JSONDict:
    if parameters is None:
        return {"type": "object", "properties": {}, "required": []}
    if not isinstance(parameters, Mapping):
        raise ToolRejected(NOT_CONVERTIBLE, f"{name}: parameters must be a JSON Schema object")
    out = copy.deepcopy(dict(parameters))
    out.pop("$schema", None)
    kind = out.setdefault("type", "object")
    if kind != "object":
        raise ToolRejected(
            NOT_CONVERTIBLE, f"{name}: parameters must have type 'object', not {kind!r}"
        )
    properties = out.setdefault("properties", {})
    if not isinstance(properties, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Mapping) for k, v in properties.items()
    ):
        raise ToolRejected(NOT_CONVERTIBLE, f"{name}: properties must map names to schemas")
    required = out.setdefault("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise ToolRejected(NOT_CONVERTIBLE, f"{name}: required must be a list of names")
    missing = [r for r in required if r not in properties]
    if missing:
        raise ToolRejected(
            NOT_CONVERTIBLE, f"{name}: required parameter {missing[0]!r} is not in properties"
        )
    _check_schema(name, out, "parameters")
    return out


def _check_schema(name: str, schema: Mapping[str, Any], what: str) -> None:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    problem = _schema_problem(cls, schema)
    if problem is not None:
        raise ToolRejected(NOT_CONVERTIBLE, f"{name}: {what} is not valid JSON Schema: {problem}")


# Outcomes of ``check_schema`` by (validator class, schema text). Checking a schema against the
# metaschema costs milliseconds, and a catalog repeats the same schemas across tools and servers
# (record shapes, id parameters, versioned copies), so a catalog of 19k tools checks each once.
_SCHEMA_PROBLEMS: dict[tuple[type, str], str | None] = {}
_SCHEMA_PROBLEMS_MAX = 1 << 16  # emptied when full: a bound on memory, not an LRU
_JSON_SCALARS = (str, int, float, bool, type(None))
_MAX_KEY_DEPTH = 256  # deeper (or cyclic, from Python callers) schemas are checked uncached


def _schema_problem(cls: Any, schema: Mapping[str, Any]) -> str | None:
    """The metaschema's complaint about ``schema``, or ``None`` when it is valid."""
    key = _plain_json_text(schema)
    if key is None:  # not plain JSON data: no text stands for it exactly, so check it every time
        return _check_with(cls, schema)
    try:
        return _SCHEMA_PROBLEMS[cls, key]
    except KeyError:
        pass
    if len(_SCHEMA_PROBLEMS) >= _SCHEMA_PROBLEMS_MAX:
        _SCHEMA_PROBLEMS.clear()
    problem = _SCHEMA_PROBLEMS[cls, key] = _check_with(cls, schema)
    return problem


def _check_with(cls: Any, schema: Mapping[str, Any]) -> str | None:
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return str(exc.message)
    return None


def _plain_json_text(value: Any) -> str | None:
    """``repr(value)`` when ``value`` is built of dicts, lists and JSON scalars only (exact
    types), else ``None``. For these types the repr is one-to-one, and unlike a JSON dump it
    keeps tuples apart from lists, which the metaschema does not accept as arrays."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict or kind is list:
            if depth >= _MAX_KEY_DEPTH:
                return None
            if kind is dict:
                if any(type(k) is not str for k in item):
                    return None
                item = item.values()
            stack.extend((child, depth + 1) for child in item)
        elif kind not in _JSON_SCALARS:
            return None
    return repr(value)


def _vagueness(name: str, description: str, min_words: int) -> str:
    text = description.strip().lower().rstrip(".")
    if text in PLACEHOLDERS:
        return "no description" if not text else f"placeholder description {description!r}"
    if text in {name.lower(), name.lower().replace("_", " ")}:
        return "the description only repeats the name"
    words = re.findall(r"[A-Za-z]{2,}", description)
    if len(words) < min_words:
        return f"description {description!r} has fewer than {min_words} words"
    return ""
