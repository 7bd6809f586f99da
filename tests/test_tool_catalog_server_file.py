"""The ``server-file`` source: the authors' mcp_servers.jsonl and plain OpenAI tool lists,
normalisation, the paper's filters with their drop reasons, and errors naming file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from astra_core.context import StageContext
from astra_core.errors import AstraError
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.records import Trajectory, tool_name
from astra_core.registry import ComponentBuilder
from astra_core.store import RecordStore


def tool(name: str, description: str = "", **required: str) -> dict:
    return {
        "name": name,
        "description": description or f"Do the {name.replace('_', ' ')} thing for a user.",
        "parameters": {
            "type": "object",
            "properties": {k: {"type": "string", "description": v} for k, v in required.items()},
            "required": list(required),
        },
    }


def authors_row(name: str, tools: list, call_info: dict | None = None, wrap: bool = True) -> dict:
    base = {
        "group_info": {
            "server_title": name.title(),
            "server_name": name,
            "server_description": f"The {name} service.",
            "domain": "testing",
        },
        "tool_list": tools,
    }
    row = {"base_info": base} if wrap else dict(base)
    row["call_info"] = call_info or {"mock_tool": True}
    return row


def run_source(tmp_path: Path, path: Path, **options):
    builder = ComponentBuilder(load_plugins().registry, seed=0)
    source = builder.build(
        "tool_graph_source", ComponentSpec("server-file", {"path": str(path), **options})
    )
    store = RecordStore(tmp_path / "run" / "synth-trajectories", Trajectory).open()
    ctx = StageContext(
        "synth-trajectories", run_dir=tmp_path / "run", builder=builder, store=store, quiet=True
    )
    graphs = list(source.load(ctx))
    drops = (
        [json.loads(line) for line in (store.directory / "dropped.jsonl").read_text().splitlines()]
        if (store.directory / "dropped.jsonl").exists()
        else []
    )
    store.close()
    return graphs, store.dropped_counts(), drops


def test_authors_format_is_read_normalised_and_linked(tmp_path: Path):
    path = tmp_path / "mcp_servers.jsonl"
    shop = [
        tool("search_orders", "Search the orders of a customer by email.", email="Email."),
        tool("get_order", "Get one order with its items.", order_id="Order id."),
        tool("cancel_order", "Cancel an order that has not shipped.", order_id="Order id."),
    ]
    mcp_tool = {
        "name": "ping_host",
        "description": "Ping a host and report latency.",
        "inputSchema": {
            "type": "object",
            "properties": {"host": {"type": "string"}},
            "required": ["host"],
        },
    }
    rows = [
        authors_row("shop", shop, {"url": "https://example.invalid/mcp", "headers": {"k": "v"}}),
        authors_row(
            "net",
            [mcp_tool, tool("trace_route", host="Host."), tool("resolve_name", host="Host.")],
            wrap=False,
        ),
        {"mcp_info": authors_row("wrapped", [tool("a_one"), tool("a_two"), tool("a_three")])},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    graphs, drops, _ = run_source(tmp_path, path)
    assert drops == {}
    assert [g.server.title for g in graphs] == ["Shop", "Net", "Wrapped"]
    shop_graph = graphs[0]
    assert shop_graph.server.endpoint == {
        "kind": "mcp-http",
        "url": "https://example.invalid/mcp",
        "headers": {"k": "v"},
    }
    assert graphs[1].server.endpoint is None  # mock_tool: only an emulator can answer
    for graph in graphs:
        for t in graph.server.tools:
            assert t["type"] == "function" and set(t["function"]) == {
                "name",
                "description",
                "parameters",
            }
    assert tool_name(graphs[1].server.tools[0]) == "ping_host"
    assert graphs[1].server.tools[0]["function"]["parameters"]["required"] == ["host"]
    edges = {(e.source, e.target) for e in shop_graph.edges}
    assert ("search_orders", "get_order") in edges and ("search_orders", "cancel_order") in edges


def test_plain_tool_lists_grouped_into_servers(tmp_path: Path):
    openai = [
        {"type": "function", "function": tool(n, order_id="Order id.")}
        for n in ("get_order", "cancel_order", "refund_order")
    ]
    json_path = tmp_path / "billing.json"
    json_path.write_text(json.dumps(openai, indent=2))
    lines = [{**tool(n, city="City."), "server": "weather"} for n in ("now", "forecast", "alerts")]
    lines += [{**tool(n, sku="SKU."), "server": "stock"} for n in ("count", "reserve", "release")]
    jsonl_path = tmp_path / "mixed.jsonl"
    jsonl_path.write_text("\n".join(json.dumps(x) for x in lines))
    servers_path = tmp_path / "servers.json"
    servers_path.write_text(
        json.dumps(
            {
                "servers": [
                    {
                        "name": "crm",
                        "description": "Contacts.",
                        "domain": "sales",
                        "tools": [
                            tool("find_contact", q="Query."),
                            tool("add_contact", n="Name."),
                            tool("drop_contact", n="Name."),
                        ],
                        "endpoint": {"kind": "mcp-stdio", "command": ["crm-server"]},
                    },
                ]
            }
        )
    )
    graphs, drops, _ = run_source(tmp_path, json_path)
    assert [g.server.title for g in graphs] == ["billing"] and drops == {}
    graphs, drops, _ = run_source(tmp_path / "b", jsonl_path, group_key="server")
    assert sorted(g.server.title for g in graphs) == ["stock", "weather"]
    graphs, _, _ = run_source(tmp_path / "c", servers_path)
    assert graphs[0].server.domain == "sales"
    assert graphs[0].server.endpoint == {"kind": "mcp-stdio", "command": ["crm-server"]}


def test_output_schemas_in_a_file_feed_the_graph(tmp_path: Path):
    tools = [
        {
            **tool("list_pets", "List the pets of the shelter."),
            "outputSchema": {
                "type": "object",
                "properties": {
                    "pets": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"pet_id": {"type": "string"}}},
                    }
                },
            },
        },
        tool("adopt_pet", "Adopt a pet from the shelter.", pet_id="Pet id."),
        tool("feed_animal", "Feed an animal of the shelter.", pet_id="Pet id."),
    ]
    path = tmp_path / "pets.jsonl"
    path.write_text(json.dumps(authors_row("pets", tools)))
    graphs, _, _ = run_source(tmp_path, path)
    server = graphs[0].server
    assert server.endpoint == {
        "kind": "emulated",
        "returns": {"list_pets": tools[0]["outputSchema"]},
    }
    reasons = {(e.source, e.target): e.reason for e in graphs[0].edges}
    assert (
        reasons[("list_pets", "adopt_pet")]
        == "list_pets.pets[].pet_id -> adopt_pet.pet_id (same name)"
    )


def test_every_filter_drops_with_its_reason(tmp_path: Path):
    good = [tool("alpha_tool"), tool("beta_tool"), tool("gamma_tool")]
    rows = [
        authors_row("fine", good),
        authors_row("small", [tool("only_one"), tool("only_two")]),
        authors_row(
            "vague",
            [
                *good,
                tool("x_tool", "TODO"),
                tool("y_tool", "Gets it."),
                {"name": "z_tool", "parameters": {"type": "object"}},
            ],
        ),
        authors_row(
            "broken",
            [
                *good,
                {"name": "bad name!", "description": "A name with a space and a bang."},
                {
                    "name": "not_object",
                    "description": "Parameters are not an object schema.",
                    "parameters": {"type": "array"},
                },
                {
                    "name": "bad_required",
                    "description": "Requires a parameter it never declares.",
                    "parameters": {"type": "object", "properties": {}, "required": ["ghost"]},
                },
                {
                    "name": "bad_schema",
                    "description": "A property type that JSON Schema lacks.",
                    "parameters": {"type": "object", "properties": {"a": {"type": "banana"}}},
                },
                "not even an object",
                tool("alpha_tool", "A second tool with a name already taken here."),
            ],
        ),
        authors_row(
            "hollow", [tool("one_tool", "??"), tool("two_tool", "   "), tool("three", "n/a")]
        ),
    ]
    path = tmp_path / "mcp_servers.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    graphs, drops, log = run_source(tmp_path, path)
    assert [g.server.title for g in graphs] == ["Fine", "Vague", "Broken"]
    assert drops == {
        "too-few-tools": 2,  # "small" (2 tools) and "hollow" (0 left after its vague tools)
        "vague-description": 6,  # x, y, z in "vague" and the three in "hollow"
        "schema-not-convertible": 5,
        "duplicate-tool-name": 1,
    }
    by_id = {d["id"]: d for d in log}
    assert by_id["small"]["reason"] == "too-few-tools"
    assert "mcp_servers.jsonl:2" in by_id["small"]["detail"]
    assert by_id["broken/bad_required#5"]["detail"].endswith(
        "bad_required: required parameter 'ghost' is not in properties"
    )
    assert "TODO" in by_id["vague/x_tool#3"]["detail"]
    # lenient thresholds: "Gets it." is enough and two tools make a server
    lenient = run_source(tmp_path / "lenient", path, min_description_words=1, min_tools=2)[1]
    assert lenient["vague-description"] == 5 and lenient["too-few-tools"] == 1


@pytest.mark.parametrize(
    ("name", "text", "where", "message"),
    [
        (
            "bad.jsonl",
            json.dumps(tool("fine_tool")) + '\n\n{"base_info": {"tool_list": [}}\n',
            ":3:",
            "not valid JSON",
        ),
        (
            "shape.jsonl",
            json.dumps(authors_row("ok", [tool("a1"), tool("a2"), tool("a3")]))
            + '\n{"hello": "world"}\n',
            ":2:",
            "not a server or a tool",
        ),
        ("list.jsonl", "[1, 2]\n", ":1:", "expected a JSON object"),
        (
            "bad.json",
            '[\n  {"name": "t", "parameters": {}},\n  {"oops": 1}\n]\n',
            ":3 (item 1)",
            "not a server or a tool",
        ),
        ("broken.json", '{\n  "servers": [\n    {"name": }\n  ]\n}\n', ":3:", "not valid JSON"),
        (
            "group.jsonl",
            '{"base_info": {"group_info": {}, "tool_list": []}}\n',
            ":1:",
            "no server_name",
        ),
    ],
)
def test_malformed_files_are_errors_naming_file_and_line(
    tmp_path: Path, name, text, where, message
):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(AstraError) as info:
        run_source(tmp_path, path)
    assert f"{path}{where}" in str(info.value) and message in str(info.value)


def test_a_missing_file_is_named(tmp_path: Path):
    with pytest.raises(AstraError, match="no such server file"):
        run_source(tmp_path, tmp_path / "absent.jsonl")


def test_relative_paths_start_at_the_config_folder(tmp_path: Path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tools.json").write_text(
        json.dumps([tool("t_one"), tool("t_two"), tool("t_three")])
    )
    builder = ComponentBuilder(load_plugins().registry, file=str(tmp_path / "run.toml"))
    source = builder.build(
        "tool_graph_source", ComponentSpec("server-file", {"path": "data/tools.json"})
    )
    assert [s.title for s in source.servers()] == ["tools"]
