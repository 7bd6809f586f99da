from __future__ import annotations

import json

import pytest

from astra_core.errors import RecordError
from astra_core.records import (
    SCHEMA_VERSION,
    Arena,
    Episode,
    Handoff,
    Reward,
    SubQuestion,
    Task,
    ToolCall,
    ToolCallResult,
    ToolChain,
    ToolEdge,
    ToolGraph,
    ToolServer,
    Trajectory,
    record_type,
)

TOOL = {
    "type": "function",
    "function": {
        "name": "get_order",
        "description": "Get an order by id.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
    },
}
TOOL2 = {
    "type": "function",
    "function": {
        "name": "list_orders",
        "description": "List orders.",
        "parameters": {"type": "object", "properties": {}},
    },
}


def make_trajectory() -> Trajectory:
    task = Task(query="Where is order A1?", server_id="shop", target_tools=("get_order",))
    messages = (
        {"role": "user", "content": "Where is order A1?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_order", "arguments": json.dumps({"order_id": "A1"})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "shipped"}'},
        {"role": "assistant", "content": "It has shipped."},
    )
    return Trajectory(messages=messages, tools=(TOOL,), task=task, scores={"final_answer": 1.0})


def make_arena() -> Arena:
    return Arena(
        question="q",
        answer="7",
        topology="multi",
        subquestions=(
            SubQuestion(
                "s1",
                "first?",
                "3",
                tool="get_order",
                call=ToolCall("get_order", {"order_id": "A1"}),
            ),
            SubQuestion("s2", "then?", "7", depends_on=("s1",), needs_tool=False),
        ),
        tools=(TOOL,),
        tool_code={"get_order": "def get_order(order_id):\n    return 3\n"},
    )


@pytest.mark.parametrize(
    "record",
    [
        ToolServer(title="Shop", tools=(TOOL, TOOL2), domain="retail"),
        ToolGraph(
            server=ToolServer(title="Shop", tools=(TOOL, TOOL2)),
            edges=(ToolEdge("list_orders", "get_order", 2.0, "order_id"),),
        ),
        ToolChain(server_id="shop", tools=("list_orders", "get_order")),
        make_trajectory(),
        make_arena(),
        Episode(
            arena_id="a",
            messages=({"role": "user", "content": "hi"},),
            calls=(ToolCallResult("get_order", {"order_id": "A1"}, "3"),),
            token_ids=(1, 2, 3),
            loss_mask=(0, 1, 1),
            reward=Reward(1.0, 1.0, 1.0, ("s1",), 1),
        ),
    ],
    ids=lambda r: type(r).__name__,
)
def test_json_round_trip_is_exact(record):
    text = record.to_json()
    data = json.loads(text)
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["id"] == record.id and len(record.id) == 16
    again = type(record).from_json(text)
    assert again == record
    assert record_type(record.kind) is type(record)


def test_content_ids_are_stable_and_depend_on_content():
    a, b = make_arena(), make_arena()
    assert a.id == b.id
    other = Arena(
        **{
            **{
                f: getattr(a, f)
                for f in ("question", "topology", "subquestions", "tools", "tool_code")
            },
            "answer": "8",
        }
    )
    assert other.id != a.id
    # The id is computed from content, not from the object identity or field order in JSON.
    assert Arena.from_dict(json.loads(a.to_json())).id == a.id


def test_records_are_frozen_and_slotted():
    arena = make_arena()
    with pytest.raises(AttributeError):
        arena.answer = "9"  # type: ignore[misc]
    assert not hasattr(arena, "__dict__")


def test_trajectory_is_openai_chat_format():
    t = make_trajectory()
    data = t.to_dict()
    assert [m["role"] for m in data["messages"]] == ["user", "assistant", "tool", "assistant"]
    call = t.tool_calls[0]
    assert isinstance(call["function"]["arguments"], str)
    assert data["tools"][0]["type"] == "function"


def test_malformed_records_name_the_record_and_field():
    data = make_arena().to_dict()
    data["topology"] = "spiral"
    with pytest.raises(RecordError, match=r"arena record .* malformed: .*topology"):
        Arena.from_dict(data)
    data = make_arena().to_dict()
    data["unexpected"] = 1
    with pytest.raises(RecordError, match="unexpected"):
        Arena.from_dict(data)
    with pytest.raises(RecordError, match="not valid JSON"):
        Arena.from_json("{nope")


def test_newer_schema_version_is_refused_with_advice():
    data = make_arena().to_dict()
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(RecordError, match="upgrade"):
        Arena.from_dict(data)


def test_graph_to_networkx():
    graph = ToolGraph(
        server=ToolServer(title="Shop", tools=(TOOL, TOOL2)),
        edges=(ToolEdge("list_orders", "get_order", 2.0, "order_id"),),
    )
    g = graph.to_networkx()
    assert set(g.nodes) == {"get_order", "list_orders"}
    assert g["list_orders"]["get_order"]["weight"] == 2.0
    assert graph.id == graph.server.id


def test_sampler_fields_are_left_out_while_empty():
    # ToolServer.returns/phrases/scenarios and ToolEdge.handoffs came later: a record that does
    # not use them serialises, and hashes to its id, as before they existed
    plain = ToolServer(title="shop", tools=(TOOL,), endpoint={"kind": "python"})
    assert set(plain.to_dict()) == {
        "title",
        "tools",
        "description",
        "domain",
        "endpoint",
        "id",
        "schema_version",
    }
    assert plain.id == "248d1201cfa3f92a"  # its id before the fields were added
    edge = ToolEdge("list_orders", "get_order", 0.9, "orders[].order_id")
    assert "handoffs" not in ToolGraph(server=plain, edges=(edge,)).to_dict()["edges"][0]


def test_sampler_fields_round_trip_and_count_in_the_id():
    server = ToolServer(
        title="shop",
        tools=(TOOL, TOOL2),
        returns={"list_orders": {"type": "object", "properties": {"orders": {"type": "array"}}}},
        phrases={"get_order": "show me order {order_id}"},
        scenarios=({"order_id": "A1"},),
    )
    edge = ToolEdge(
        "list_orders", "get_order", handoffs=(Handoff("order_id", ("orders", "[]", "id")),)
    )
    graph = ToolGraph(server=server, edges=(edge,))
    assert ToolGraph.from_json(graph.to_json()) == graph
    assert server.id != ToolServer(title="shop", tools=(TOOL, TOOL2)).id
