"""The ``mcp-stdio`` tool-graph source against real MCP servers started over stdio: tools listed
and converted to OpenAI schemas, endpoints kept for real calls, output schemas turned into
graph edges, and every server that fails or has too few tools dropped with its reason."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_mcp_support import (
    dropped,
    git_command,
    make_db,
    make_repo,
    notes_command,
    sqlite_command,
    stage_context,
    time_command,
)

from astra_core.errors import ConfigError
from astra_core.options import ComponentSpec


def build_source(ctx, **options):
    return ctx.build("tool_graph_source", ComponentSpec("mcp-stdio", options))


def test_reference_servers_are_listed_as_openai_tools_with_their_endpoint(tmp_path: Path):
    repo, db = make_repo(tmp_path), make_db(tmp_path)
    ctx = stage_context(tmp_path)
    source = build_source(
        ctx,
        min_tools=2,
        servers=[
            {"name": "time", "command": time_command(), "domain": "time"},
            {"name": "git", "command": git_command(repo), "env": {"GIT_PAGER": "cat"}},
            {"name": "sqlite", "command": sqlite_command(db), "description": "People database."},
        ],
    )
    graphs = {g.server.title: g for g in source.load(ctx)}
    assert dropped(ctx) == []
    assert set(graphs) == {"time", "git", "sqlite"}

    time_server = graphs["time"].server
    assert set(time_server.tool_names) == {"get_current_time", "convert_time"}
    assert time_server.domain == "time"
    get_time = time_server.tool("get_current_time")
    assert get_time["type"] == "function"
    parameters = get_time["function"]["parameters"]
    assert parameters["type"] == "object" and parameters["required"] == ["timezone"]
    assert parameters["properties"]["timezone"]["type"] == "string"
    endpoint = time_server.endpoint
    assert endpoint is not None
    assert endpoint["kind"] == "mcp-stdio"
    assert endpoint["command"] == time_command()
    assert endpoint["server_info"]["name"] == "mcp-time"

    git_server = graphs["git"].server
    assert {"git_status", "git_log", "git_show"} <= set(git_server.tool_names)
    assert git_server.endpoint["env"] == {"GIT_PAGER": "cat"}
    # MCP annotations are kept: the probe never calls a tool marked as writing by default
    assert git_server.endpoint["annotations"]["git_status"]["readOnlyHint"] is True
    assert git_server.endpoint["annotations"]["git_commit"]["readOnlyHint"] is False

    sqlite_server = graphs["sqlite"].server
    assert {"read_query", "list_tables", "describe_table"} <= set(sqlite_server.tool_names)
    assert sqlite_server.description == "People database."
    # every graph's nodes are its server's tools
    for graph in graphs.values():
        assert set(graph.to_networkx().nodes) == set(graph.server.tool_names)


def test_output_schemas_become_schema_flow_edges(tmp_path: Path):
    ctx = stage_context(tmp_path)
    source = build_source(ctx, servers=[{"name": "notes", "command": notes_command(tmp_path)}])
    (graph,) = list(source.load(ctx))
    returns = graph.server.endpoint["returns"]
    # list_notes' schema refers to a $defs entry; it is inlined so its fields are visible
    assert returns["list_notes"]["properties"]["notes"]["items"]["properties"]["note_id"]
    edges = {(e.source, e.target): e for e in graph.edges}
    assert ("create_note", "get_note") in edges
    assert "note_id" in edges[("create_note", "get_note")].reason
    assert ("list_notes", "get_note") in edges
    assert ("get_note", "create_note") not in edges or "text" in edges[
        ("get_note", "create_note")
    ].reason


def test_min_tools_drops_small_servers_with_the_papers_reason(tmp_path: Path):
    ctx = stage_context(tmp_path)
    source = build_source(ctx, servers=[{"name": "time", "command": time_command()}])
    assert list(source.load(ctx)) == []
    (drop,) = dropped(ctx)
    assert drop["reason"] == "too-few-tools"
    assert drop["id"] == "mcp-stdio/time"
    assert "2 usable tool(s), fewer than min_tools=3" in drop["detail"]


def test_servers_that_fail_to_start_are_dropped_with_a_clear_reason(tmp_path: Path):
    ctx = stage_context(tmp_path)
    crashing = [sys.executable, "-c", "import sys; sys.stderr.write('bad flag --x'); sys.exit(2)"]
    source = build_source(
        ctx,
        min_tools=2,
        start_timeout_s=5,
        servers=[
            {"name": "missing", "command": ["astra-no-such-mcp-server", "--stdio"]},
            {"name": "crashing", "command": crashing},
            {"name": "silent", "command": [sys.executable, "-c", "import time; time.sleep(60)"]},
            {"name": "time", "command": time_command()},
            {"name": "needs-secret", "command": time_command(), "env": {"TOKEN": "${ASTRA_NOPE}"}},
        ],
    )
    graphs = list(source.load(ctx))
    assert [g.server.title for g in graphs] == ["time"]  # one bad server does not stop the rest
    drops = {d["id"]: d for d in dropped(ctx)}
    assert set(drops) == {
        "mcp-stdio/missing",
        "mcp-stdio/crashing",
        "mcp-stdio/silent",
        "mcp-stdio/needs-secret",
    }
    assert all(d["reason"] == "mcp-server-failed" for d in drops.values())
    missing = drops["mcp-stdio/missing"]["detail"]
    assert "'missing'" in missing and "astra-no-such-mcp-server --stdio" in missing
    assert "not on PATH" in missing
    crashed = drops["mcp-stdio/crashing"]["detail"]
    assert "'crashing'" in crashed and "bad flag --x" in crashed  # the server's own stderr
    assert "did not answer MCP initialize within 5 s" in drops["mcp-stdio/silent"]["detail"]
    assert "${ASTRA_NOPE}" in drops["mcp-stdio/needs-secret"]["detail"]


def test_vague_tools_are_dropped_when_asked(tmp_path: Path):
    ctx = stage_context(tmp_path)
    repo = make_repo(tmp_path)
    source = build_source(
        ctx, min_description_words=3, servers=[{"name": "git", "command": git_command(repo)}]
    )
    (graph,) = list(source.load(ctx))
    drops = dropped(ctx)
    # "Switches branches" has two words
    assert "git_checkout" not in graph.server.tool_names
    assert any(
        d["id"] == "mcp-stdio/git/git_checkout" and d["reason"] == "vague-description"
        for d in drops
    )


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        ([], "list at least one MCP server"),
        ([{"name": "a", "command": []}], "command must name a program"),
        ([{"name": "a", "command": ["x"], "comand": 1}], "unknown option 'comand'"),
        ([{"name": "a", "command": ["x"]}, {"name": "a", "command": ["y"]}], "more than one"),
        ([{"name": "bad name", "command": ["x"]}], "must start with a letter"),
    ],
)
def test_bad_server_tables_are_config_errors(tmp_path: Path, servers, message):
    ctx = stage_context(tmp_path)
    with pytest.raises(ConfigError, match=message):
        build_source(ctx, servers=servers)
