"""One rule for a failed tool call, shared by the trajectory judge and the arenas' retry
demonstrations."""

from __future__ import annotations

import pytest

from astra_core.records import ToolCallResult
from astra_core.tool_errors import call_failed, is_error_output


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ('{"error": "no city with that name in the records"}', True),
        ('  {"error": "no order", "order_id": "ORD-9"}', True),  # an error with details
        ('{"error": null, "result": 5}', False),  # an API that always has the member
        ('{"error": "", "result": 5}', False),
        ('{"city_name": "Voxton", "population": 7559860}', False),
        ('[{"error": "x"}]', False),
        ("Error: the tool call failed: KeyError", False),  # plain text: the executor marks it
        ("{not json", False),
        (None, False),
    ],
)
def test_error_output(output: object, expected: bool) -> None:
    assert is_error_output(output) is expected


def test_a_call_failed_when_marked_or_answered_with_an_error_object() -> None:
    assert call_failed(ToolCallResult("f", {}, "Error: timed out", error=True))
    assert call_failed(ToolCallResult("f", {}, '{"error": "no such id"}'))
    assert not call_failed(ToolCallResult("f", {}, '{"id": 1}'))
