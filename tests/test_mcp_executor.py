"""The ``mcp`` tool executor calling real MCP servers over stdio: real outputs from
mcp-server-time, mcp-server-git and mcp-server-sqlite, tool errors and failures as error
observations, one reused server process per server, timeouts and restarts."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from test_mcp_support import (
    COMMIT_MESSAGE,
    ROWS,
    WELCOME,
    child_processes,
    git_command,
    make_db,
    make_repo,
    notes_command,
    sqlite_command,
    stage_context,
    time_command,
)

from astra_core.options import ComponentSpec
from astra_core.records import ToolCall, ToolServer


def load_servers(tmp_path: Path, servers: list[dict]) -> dict[str, ToolServer]:
    ctx = stage_context(tmp_path)
    source = ctx.build(
        "tool_graph_source", ComponentSpec("mcp-stdio", {"servers": servers, "min_tools": 1})
    )
    return {g.server.title: g.server for g in source.load(ctx)}


def build_executor(tmp_path: Path, **options):
    ctx = stage_context(tmp_path / "executor")
    return ctx.build("tool_executor", ComponentSpec("mcp", options))


@pytest.fixture
def executor(tmp_path: Path):
    ex = build_executor(tmp_path)
    yield ex
    ex.close()


def test_time_server_answers_with_the_current_time_in_the_asked_zone(tmp_path, executor):
    server = load_servers(tmp_path, [{"name": "time", "command": time_command()}])["time"]
    before = time.time()
    result = executor.call(server, ToolCall("get_current_time", {"timezone": "Asia/Tokyo"}))
    assert not result.error, result.output
    data = json.loads(result.output)
    assert data["timezone"] == "Asia/Tokyo"
    moment = datetime.fromisoformat(data["datetime"])
    assert moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 9 * 3600
    assert abs(moment.timestamp() - before) < 120  # the live clock, not a canned value

    converted = executor.call(
        server,
        ToolCall(
            "convert_time",
            {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
        ),
    )
    assert not converted.error, converted.output
    assert json.loads(converted.output)["target"]["datetime"].endswith("T21:00:00+09:00")


def test_git_server_reports_the_commit_the_test_made(tmp_path, executor):
    repo = make_repo(tmp_path)
    server = load_servers(tmp_path, [{"name": "git", "command": git_command(repo)}])["git"]
    status = executor.call(server, ToolCall("git_status", {"repo_path": str(repo)}))
    assert not status.error and "working tree clean" in status.output
    log = executor.call(server, ToolCall("git_log", {"repo_path": str(repo)}))
    assert not log.error and COMMIT_MESSAGE in log.output
    (repo / "notes.txt").write_text("new\n")
    status = executor.call(server, ToolCall("git_status", {"repo_path": str(repo)}))
    assert "notes.txt" in status.output  # the server sees the repository as it is now


def test_sqlite_server_returns_the_rows_the_test_inserted(tmp_path, executor):
    db = make_db(tmp_path)
    server = load_servers(tmp_path, [{"name": "sqlite", "command": sqlite_command(db)}])["sqlite"]
    tables = executor.call(server, ToolCall("list_tables", {}))
    assert not tables.error and "people" in tables.output
    rows = executor.call(
        server, ToolCall("read_query", {"query": "SELECT id, name, age FROM people ORDER BY id"})
    )
    assert not rows.error, rows.output
    for row_id, name, age in ROWS:
        assert f"'id': {row_id}, 'name': '{name}', 'age': {age}" in rows.output


def test_tool_errors_and_bad_calls_become_error_observations(tmp_path, executor):
    server = load_servers(tmp_path, [{"name": "time", "command": time_command()}])["time"]
    bad_zone = executor.call(server, ToolCall("get_current_time", {"timezone": "Mars/Olympus"}))
    assert bad_zone.error and "Mars/Olympus" in bad_zone.output
    missing = executor.call(server, ToolCall("get_current_time", {}))
    assert missing.error and "timezone" in missing.output
    unknown = executor.call(server, ToolCall("get_weather", {"city": "Paris"}))
    assert unknown.error and "no tool 'get_weather'" in unknown.output
    # the session is still good after errors
    ok = executor.call(server, ToolCall("get_current_time", {"timezone": "UTC"}))
    assert not ok.error


def test_one_process_per_server_reused_across_calls_and_threads(tmp_path, executor):
    servers = load_servers(tmp_path, [{"name": "notes", "command": notes_command(tmp_path)}])
    notes = servers["notes"]
    marker = str(tmp_path / "notes_server.py")
    assert child_processes(marker) == []  # the source stopped the server it listed
    created = executor.call(notes, ToolCall("create_note", {"text": "buy milk"}))
    assert not created.error, created.output
    note_id = json.loads(created.output)["note_id"]
    (pid,) = child_processes(marker)
    assert note_id.endswith(f"-{pid}")  # the note was made by that process

    results = []

    def fetch() -> None:
        results.append(executor.call(notes, ToolCall("get_note", {"note_id": note_id})))

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the note lives in the server's memory: only the same process can return it
    assert all(not r.error and json.loads(r.output)["text"] == "buy milk" for r in results)
    assert child_processes(marker) == [pid]
    assert list(executor.starts.values()) == [1]
    executor.close()
    deadline = time.time() + 10
    while child_processes(marker) and time.time() < deadline:
        time.sleep(0.1)
    assert child_processes(marker) == []


def test_timeouts_and_crashes_are_observations_and_the_server_restarts(tmp_path: Path):
    servers = load_servers(tmp_path, [{"name": "notes", "command": notes_command(tmp_path)}])
    notes = servers["notes"]
    executor = build_executor(tmp_path, call_timeout_s=1.0, max_starts=2)
    try:
        slow = executor.call(notes, ToolCall("wait", {"seconds": 5}))
        assert slow.error and "did not answer within 1 s" in slow.output
        quick = executor.call(notes, ToolCall("wait", {"seconds": 0}))
        assert not quick.error and quick.output == "done"

        crashed = executor.call(notes, ToolCall("crash", {}))
        assert crashed.error and "notes" in crashed.output
        # the next call starts the server again (a new process: its notes are gone)
        listing = executor.call(notes, ToolCall("list_notes", {}))
        assert not listing.error, listing.output
        assert json.loads(listing.output) == {"notes": [WELCOME]}
        assert list(executor.starts.values()) == [2]
        executor.call(notes, ToolCall("crash", {}))
        refused = executor.call(notes, ToolCall("list_notes", {}))
        assert refused.error and "not starting it again" in refused.output
    finally:
        executor.close()


def test_env_references_are_filled_when_the_server_starts(tmp_path, executor, monkeypatch):
    monkeypatch.setenv("ASTRA_TEST_SECRET", "s3cret")
    servers = load_servers(
        tmp_path,
        [
            {
                "name": "notes",
                "command": notes_command(tmp_path),
                "env": {"NOTES_TOKEN": "token-${ASTRA_TEST_SECRET}"},
            }
        ],
    )
    notes = servers["notes"]
    assert notes.endpoint["env"] == {"NOTES_TOKEN": "token-${ASTRA_TEST_SECRET}"}  # not the value
    result = executor.call(notes, ToolCall("read_env", {"name": "NOTES_TOKEN"}))
    assert not result.error and result.output == "token-s3cret"


def test_servers_without_an_mcp_endpoint_are_refused(executor):
    server = ToolServer(
        title="shop",
        tools=({"type": "function", "function": {"name": "f", "parameters": {}}},),
        endpoint={"kind": "python", "catalog": "bundled"},
    )
    result = executor.call(server, ToolCall("f", {}))
    assert result.error and "not an MCP one" in result.output
