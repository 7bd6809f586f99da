"""Call statements an LLM wrote (``tool_name(arg='value', n=3)``) read into ``ToolCall`` s.

Only literal arguments are accepted (``ast.literal_eval``), so a statement is data, never code;
positional arguments take the schema's parameter names in order. ``CallProblem`` says what is
wrong in words the LLM can act on.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from astra_core.records import ToolCall


class CallProblem(ValueError):
    """A call statement that cannot be used as it is."""


def parse_call(statement: str, schema: Mapping[str, Any]) -> ToolCall:
    """The call ``statement`` makes to the tool of ``schema`` (an OpenAI tool)."""
    fn = schema.get("function", schema)
    name = str(fn["name"])
    params = (fn.get("parameters") or {}).get("properties") or {}
    required = (fn.get("parameters") or {}).get("required") or []
    text = statement.strip().removeprefix("print(").strip()
    if statement.strip().startswith("print("):
        text = text.removesuffix(")")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise CallProblem(f"the call statement does not parse: {exc.msg}") from None
    call = tree.body
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise CallProblem(f"the call statement must be one call of {name}(...), got {text!r}")
    if call.func.id != name:
        raise CallProblem(f"the call statement calls {call.func.id!r}, the tool is {name!r}")
    arguments: dict[str, Any] = {}
    order = list(params)
    for index, node in enumerate(call.args):
        if index >= len(order):
            raise CallProblem(f"{name} takes at most {len(order)} positional arguments")
        arguments[order[index]] = _literal(node, order[index])
    for keyword in call.keywords:
        if keyword.arg is None:
            raise CallProblem("**kwargs is not allowed in a call statement")
        arguments[keyword.arg] = _literal(keyword.value, keyword.arg)
    if params:
        unknown = [a for a in arguments if a not in params]
        if unknown:
            raise CallProblem(
                f"argument {unknown[0]!r} is not a parameter of {name} "
                f"(its parameters: {', '.join(order)})"
            )
    missing = [r for r in required if r not in arguments]
    if missing:
        raise CallProblem(f"required parameter {missing[0]!r} of {name} is not given")
    parameters = fn.get("parameters") or {"type": "object"}
    try:
        jsonschema.Draft202012Validator.check_schema(parameters)
    except jsonschema.SchemaError as exc:
        raise CallProblem(
            f"the parameters of {name} are not a valid JSON Schema: {exc.message}"
        ) from None
    error = best_match(jsonschema.Draft202012Validator(parameters).iter_errors(arguments))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "arguments"
        raise CallProblem(f"the call's {where} does not fit the tool's schema: {error.message}")
    return ToolCall(name, arguments)


def _literal(node: ast.expr, arg: str) -> Any:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        raise CallProblem(f"argument {arg!r} is not a literal value") from None
    try:  # an agent's calls are JSON: tuples become lists, sets and bytes are refused
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        raise CallProblem(f"argument {arg!r} is not a JSON value") from None
