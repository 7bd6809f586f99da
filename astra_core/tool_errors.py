"""Whether a tool call failed.

A tool reports a failure in one of two ways: the executor marks the result
(``ToolCallResult.error``: the call raised, timed out or broke its schema), or the tool answers
normally with a JSON object whose ``error`` member is set (``{"error": "no city with that
name"}``), as the arenas' tools and many MCP servers do. Both count as a failed call wherever
data are judged, so the rule lives here once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from astra_core.records import ToolCallResult

__all__ = ["call_failed", "is_error_output"]


def is_error_output(output: object) -> bool:
    """A JSON object with a non-empty ``error`` member (``{"error": null, ...}`` is not one)."""
    if not isinstance(output, str) or not output.lstrip().startswith("{"):
        return False
    try:
        data = json.loads(output)
    except ValueError:
        return False
    return isinstance(data, Mapping) and bool(data.get("error"))


def call_failed(result: ToolCallResult) -> bool:
    """The executor marked the call failed, or the tool answered with an error object."""
    return result.error or is_error_output(result.output)
