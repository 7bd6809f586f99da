"""BFCL's ground-truth call strings (``"mv(source='a', destination='b')"``) as ``ToolCall``s.

The strings are parsed with ``ast`` and their arguments read with ``ast.literal_eval``: nothing
is evaluated. Positional arguments (``"sort('final_report.pdf')"``) are named from the method's
signature, which the caller looks up in the bfcl-eval class.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from astra_core.records import ToolCall


class CallParseError(ValueError):
    """A ground-truth call string that is not ``name(literal, key=literal, ...)``."""


def parse_call(text: str, signature_of: Callable[[str], inspect.Signature | None]) -> ToolCall:
    """One call string as a ``ToolCall`` with every argument named."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise CallParseError(f"call {text!r} does not parse: {exc.msg}") from None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise CallParseError(f"call {text!r} is not a plain function call")
    name = node.func.id
    try:
        positional = [ast.literal_eval(a) for a in node.args]
        keywords = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise CallParseError(f"call {text!r} unpacks **arguments")
            keywords[kw.arg] = ast.literal_eval(kw.value)
    except ValueError:
        raise CallParseError(f"call {text!r} has an argument that is not a literal") from None
    arguments: dict[str, Any] = {}
    if positional:
        signature = signature_of(name)
        if signature is None:
            raise CallParseError(f"call {text!r}: no method {name!r} to name its arguments")
        params = [
            p.name
            for p in signature.parameters.values()
            if p.name != "self" and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if len(positional) > len(params):
            raise CallParseError(
                f"call {text!r} passes {len(positional)} positional arguments; {name} takes "
                f"{len(params)}"
            )
        arguments.update(zip(params, positional, strict=False))
    for key, value in keywords.items():
        if key in arguments:
            raise CallParseError(f"call {text!r} passes {key!r} twice")
        arguments[key] = value
    return ToolCall(name, arguments)


def call_to_dict(call: ToolCall) -> dict[str, Any]:
    return {"name": call.name, "arguments": dict(call.arguments)}


def call_from_dict(data: Mapping[str, Any]) -> ToolCall:
    return ToolCall(str(data["name"]), dict(data.get("arguments") or {}))
