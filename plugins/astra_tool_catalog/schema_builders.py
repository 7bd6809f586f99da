"""Small constructors for the JSON Schemas of the bundled tools (parameters and outputs).

They keep the server modules short and make every schema the same shape: objects list their
properties, parameter objects forbid unknown keys, output objects require every field.
"""

from __future__ import annotations

from typing import Any

JSONSchema = dict[str, Any]


def string(
    description: str, *, enum: list[str] | None = None, pattern: str | None = None
) -> JSONSchema:
    schema: JSONSchema = {"type": "string", "description": description}
    if enum is not None:
        schema["enum"] = list(enum)
    if pattern is not None:
        schema["pattern"] = pattern
    return schema


def integer(
    description: str, *, minimum: int | None = None, maximum: int | None = None
) -> JSONSchema:
    schema: JSONSchema = {"type": "integer", "description": description}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def number(description: str, *, minimum: float | None = None) -> JSONSchema:
    schema: JSONSchema = {"type": "number", "description": description}
    if minimum is not None:
        schema["minimum"] = minimum
    return schema


def boolean(description: str) -> JSONSchema:
    return {"type": "boolean", "description": description}


def array(items: JSONSchema, description: str) -> JSONSchema:
    return {"type": "array", "description": description, "items": items}


def obj(properties: dict[str, JSONSchema], description: str = "") -> JSONSchema:
    """An output object: every listed field is always present."""
    schema: JSONSchema = {
        "type": "object",
        "properties": dict(properties),
        "required": list(properties),
    }
    if description:
        schema["description"] = description
    return schema


def params(
    required: dict[str, JSONSchema] | None = None,
    optional: dict[str, JSONSchema] | None = None,
) -> JSONSchema:
    """A tool's ``parameters`` object: required ones first, unknown keys rejected."""
    required = required or {}
    properties = {**required, **(optional or {})}
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


DATE = r"^\d{4}-\d{2}-\d{2}$"
TIME = r"^([01]\d|2[0-3]):[0-5]\d$"
