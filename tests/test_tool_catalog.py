"""The bundled offline catalog: its shape, its schemas, its implementations and the schema-flow
graphs built from it."""

from __future__ import annotations

import json

import jsonschema
import networkx as nx
import pytest
from astra_tool_catalog.bundled_source import catalog_server
from astra_tool_catalog.schema_flow import SchemaFlowGraphBuilder
from astra_tool_catalog.servers import SERVERS

from astra_core.context import StageContext
from astra_core.errors import ConfigError
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.records import ToolCall, ToolGraph, ToolServer, Trajectory, tool_name
from astra_core.registry import ComponentBuilder
from astra_core.store import RecordStore
from astra_core.tool_schemas import (
    OutputField,
    ParamSpec,
    match_param,
    produced_fields,
    tool_returns,
)


@pytest.fixture(scope="module")
def builder() -> ComponentBuilder:
    return ComponentBuilder(load_plugins().registry, seed=0)


@pytest.fixture(scope="module")
def servers() -> list[ToolServer]:
    return [catalog_server(spec, state_seed=0) for spec in SERVERS.values()]


@pytest.fixture(scope="module")
def graphs(builder: ComponentBuilder, tmp_path_factory: pytest.TempPathFactory) -> list[ToolGraph]:
    tmp = tmp_path_factory.mktemp("catalog")
    ctx = StageContext(
        "synth-trajectories",
        run_dir=tmp,
        builder=builder,
        store=RecordStore(tmp / "synth-trajectories", Trajectory).open(),
        quiet=True,
    )
    return list(builder.build("tool_graph_source", "bundled-catalog").load(ctx))


def test_catalog_has_eight_plus_servers_in_distinct_domains_and_forty_plus_tools(
    servers: list[ToolServer],
):
    assert len(servers) >= 8
    assert len({s.domain for s in servers}) >= 7
    assert sum(len(s.tools) for s in servers) >= 40
    assert min(len(s.tools) for s in servers) >= 3  # the paper's server filter
    names = [tool_name(t) for s in servers for t in s.tools]
    for server in servers:
        assert len(set(server.tool_names)) == len(server.tool_names), server.title
    assert len(names) == sum(len(s.tools) for s in servers)


def test_every_tool_is_a_plain_openai_schema_with_valid_json_schemas(servers: list[ToolServer]):
    for server in servers:
        returns = tool_returns(server)
        for tool in server.tools:
            assert set(tool) == {"type", "function"} and tool["type"] == "function"
            function = tool["function"]
            assert set(function) == {"name", "description", "parameters"}
            assert len(function["description"].split()) >= 3, function["name"]
            parameters = function["parameters"]
            jsonschema.Draft202012Validator.check_schema(parameters)
            assert parameters["type"] == "object"
            assert set(parameters["required"]) <= set(parameters["properties"])
            for name, prop in parameters["properties"].items():
                assert prop.get("description"), f"{function['name']}.{name} has no description"
            jsonschema.Draft202012Validator.check_schema(returns[function["name"]])
        # what tools return is kept in the endpoint, never in what models are offered
        assert server.endpoint is not None and server.endpoint["kind"] == "python"
        assert set(returns) == set(server.tool_names)


def test_states_and_scenarios_are_deterministic_per_seed():
    for spec in SERVERS.values():
        assert spec.initial_state(3) == spec.initial_state(3)
        assert spec.scenarios(3, 8) == spec.scenarios(3, 8)
        assert spec.initial_state(3) is not spec.initial_state(3)  # a fresh copy every time
    shop = SERVERS["shop"]
    assert shop.initial_state(0) != shop.initial_state(1)


def test_every_tool_answers_its_own_output_schema_from_a_scenario(builder: ComponentBuilder):
    """Run every tool for real with the values its server's users know; the output must be
    JSON that validates against the documented output schema."""
    executor = builder.build("tool_executor", "python-catalog")
    for spec in SERVERS.values():
        server = catalog_server(spec, state_seed=0)
        returns = tool_returns(server)
        for tool in server.tools:
            name = tool_name(tool)
            required = tool["function"]["parameters"]["required"]
            answered = 0
            for scenario in server.endpoint["scenarios"]:
                assert set(required) <= set(scenario), f"{spec.name}.{name}: {required}"
                arguments = {p: scenario[p] for p in required}
                result = executor.open_session().call(server, ToolCall(name, arguments))
                output = json.loads(result.output)
                if result.error:
                    assert set(output) == {"error"} and output["error"]
                    continue
                jsonschema.validate(output, returns[name])
                answered += 1
            assert answered >= 1, f"{spec.name}.{name} never succeeded from a scenario"


def test_graph_source_yields_one_graph_per_server_with_reasons(graphs: list[ToolGraph]):
    assert len(graphs) == len(SERVERS)
    for graph in graphs:
        names = set(graph.server.tool_names)
        assert graph.edges, graph.server.title
        for edge in graph.edges:
            assert edge.source in names and edge.target in names  # never across servers
            assert edge.source != edge.target
            assert edge.weight > 0 and edge.reason
        digraph = graph.to_networkx()
        assert isinstance(digraph, nx.DiGraph) and set(digraph.nodes) == names
        # most tools take part in some hand-off
        touched = {e.source for e in graph.edges} | {e.target for e in graph.edges}
        assert len(touched) >= len(names) - 1, graph.server.title


def _edges(graphs: list[ToolGraph], server: str) -> dict[tuple[str, str], str]:
    graph = next(g for g in graphs if g.server.endpoint["server"] == server)
    return {(e.source, e.target): e.reason for e in graph.edges}


def test_real_id_dependencies_are_edges(graphs: list[ToolGraph]):
    shop = _edges(graphs, "shop")
    assert "orders[].order_id -> get_order.order_id" in shop[("search_orders", "get_order")]
    assert "order_id -> cancel_order.order_id" in shop[("get_order", "cancel_order")]
    assert "customer_id -> search_orders.customer_id" in shop[("find_customer", "search_orders")]
    assert ("find_customer", "get_order") not in shop  # a customer id is not an order id
    assert ("cancel_order", "find_customer") not in shop
    flights = _edges(graphs, "flights")
    assert ("search_flights", "book_flight") in flights
    assert ("book_flight", "select_seat") in flights
    # matched by description: both are IATA airport codes
    assert (
        "airport_code -> search_flights.origin (description)"
        in flights[("search_airports", "search_flights")]
    )
    bank = _edges(graphs, "bank")
    assert (
        "-> transfer_funds.from_account_id (role of the same name)"
        in bank[("list_accounts", "transfer_funds")]
    )
    recipes = _edges(graphs, "recipes")
    assert (
        "ingredients[].ingredient -> find_substitutes.ingredient"
        in recipes[("get_recipe", "find_substitutes")]
    )


def test_matching_rules():
    order_id = ParamSpec("order_id", "string", "Order id.")
    in_list = OutputField("list_orders", ("orders", "[]", "id"), "id", "string", "", None, "orders")
    assert match_param(order_id, in_list).basis == "name within its entity"
    customer = OutputField("x", ("customer_id",), "customer_id", "string")
    assert match_param(order_id, customer) is None
    count = ParamSpec("count", "integer", "How many.")
    assert match_param(count, OutputField("x", ("count",), "count", "string")) is None  # type
    assert (
        match_param(
            ParamSpec("amount", "number"), OutputField("x", ("amount",), "amount", "integer")
        )
        is not None
    )
    seat = ParamSpec("seat", "string", "", ("window", "aisle"))
    wrong_enum = OutputField("x", ("seat",), "seat", "string", "", ("middle",))
    assert match_param(seat, wrong_enum) is None
    fields = produced_fields(
        "get_recipe",
        {
            "type": "object",
            "properties": {
                "tags": {"type": "array", "items": {"type": "string"}},
                "lines": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"ingredient": {"type": "string"}}},
                },
            },
        },
    )
    assert {f.path for f in fields} == {("tags", "[]"), ("lines", "[]", "ingredient")}


def test_graph_without_output_schemas_uses_names_and_descriptions():
    def tool(name: str, description: str, required: dict[str, str]) -> dict:
        return {
            "type": "function",
            "function": {
                "name": name,
                "description": description,
                "parameters": {
                    "type": "object",
                    "properties": {
                        k: {"type": "string", "description": v} for k, v in required.items()
                    },
                    "required": list(required),
                },
            },
        }

    server = ToolServer(
        title="notes",
        tools=(
            tool("search_notes", "Search notes by a word.", {"query": "Word."}),
            tool("get_note", "Get a note by id.", {"note_id": "Note id."}),
            tool("archive", "Archive something; returns the archive id.", {"note_id": "Note id."}),
            tool("restore", "Restore from the archive.", {"archive_id": "Archive id."}),
        ),
    )
    edges = {(e.source, e.target): e for e in SchemaFlowGraphBuilder().build(server).edges}
    assert ("search_notes", "get_note") in edges and edges[("search_notes", "get_note")].weight
    assert ("archive", "restore") in edges  # "returns the archive id"
    assert ("get_note", "restore") not in edges


def test_source_options_are_checked(builder: ComponentBuilder):
    source = builder.build(
        "tool_graph_source", ComponentSpec("bundled-catalog", {"servers": ["bank", "shop"]})
    )
    assert source.server_names() == ["shop", "bank"]
    with pytest.raises(ConfigError, match="no bundled server 'casino'"):
        builder.build(
            "tool_graph_source", ComponentSpec("bundled-catalog", {"servers": ["casino"]})
        )
    with pytest.raises(ConfigError, match="unknown graph builder"):
        builder.build(
            "tool_graph_source", ComponentSpec("bundled-catalog", {"graph_builder": "oracle"})
        )


def test_state_seed_changes_the_world_but_not_the_tools(builder: ComponentBuilder):
    a = builder.build("tool_graph_source", ComponentSpec("bundled-catalog", {"state_seed": 1}))
    b = builder.build("tool_graph_source", ComponentSpec("bundled-catalog", {"state_seed": 2}))
    sa, sb = a.servers()[0], b.servers()[0]
    assert sa.tools == sb.tools
    assert sa.endpoint["scenarios"] != sb.endpoint["scenarios"]
    assert sa.id != sb.id
