"""MCP servers over HTTP: a real MCP server built with the mcp SDK's own high-level API, served by
uvicorn on loopback in a subprocess over streamable HTTP (and SSE), reached by the ``mcp``
source and the ``mcp`` executor: tools listed and linked, real answers, headers filled from the
environment, the authors' ``mcp-http`` and ``smithery`` registry rows, bounded reconnection with
backoff when the server goes away, and a clear error for a URL nothing listens on."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import astra, free_port
from test_mcp_support import dropped, need_mcp, stage_context

from astra_core.errors import ConfigError
from astra_core.options import ComponentSpec
from astra_core.records import ToolCall, ToolServer

HTTP_SERVER = '''
"""A small MCP server for ASTRA's HTTP tests, served by uvicorn on loopback."""
import asyncio
import base64
import os
import sys

import uvicorn
from typing_extensions import TypedDict

try:
    from mcp.server.fastmcp import Context, FastMCP as Server  # mcp 1.x
except ImportError:
    from mcp.server.mcpserver import Context, MCPServer as Server  # mcp 2.x

app = Server("notes-http")
NOTES: dict[str, str] = {}


class Note(TypedDict):
    note_id: str
    text: str


class Caller(TypedDict):
    authorization: str
    api_key: str
    config: str


@app.tool()
def create_note(text: str) -> Note:
    """Create a note with the given text and return it with its new id."""
    note_id = f"N-{len(NOTES) + 1:03d}-{os.getpid()}"
    NOTES[note_id] = text
    return {"note_id": note_id, "text": text}


@app.tool()
def get_note(note_id: str) -> Note:
    """Return the note with this id."""
    if note_id not in NOTES:
        raise ValueError(f"no note {note_id}")
    return {"note_id": note_id, "text": NOTES[note_id]}


@app.tool()
def whoami(ctx: Context) -> Caller:
    """Return the Authorization header, api_key and decoded config the request carried."""
    request = ctx.request_context.request
    config = request.query_params.get("config", "")
    return {
        "authorization": request.headers.get("authorization", ""),
        "api_key": request.query_params.get("api_key", ""),
        "config": base64.b64decode(config).decode() if config else "",
    }


@app.tool()
def server_pid() -> int:
    """Return the process id of the server."""
    return os.getpid()


@app.tool()
async def wait(seconds: float) -> str:
    """Sleep for the given number of seconds, then answer."""
    await asyncio.sleep(seconds)
    return "done"


def guarded(inner):
    """Answer 401 to a request whose query holds "refused" (a bad API key)."""

    async def asgi(scope, receive, send):
        if scope["type"] == "http" and b"refused" in scope.get("query_string", b""):
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"bad api key"})
            return
        await inner(scope, receive, send)

    return asgi


if __name__ == "__main__":
    port, transport = int(sys.argv[1]), sys.argv[2]
    inner = app.sse_app() if transport == "sse" else app.streamable_http_app()
    uvicorn.run(guarded(inner), host="127.0.0.1", port=port, log_level="warning")
'''

NOTE_TOOLS = {"create_note", "get_note", "whoami", "server_pid", "wait"}


class HttpServer:
    """The test server in its own process, on a fixed loopback port (so it can come back)."""

    def __init__(self, folder: Path, transport: str = "streamable-http") -> None:
        need_mcp()
        pytest.importorskip("uvicorn", reason="uvicorn (an mcp SDK dependency) is missing")
        self.script = folder / "notes_http_server.py"
        self.script.write_text(HTTP_SERVER, encoding="utf-8")
        self.transport = transport
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        path = "/sse" if self.transport == "sse" else "/mcp"
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> HttpServer:
        self.process = subprocess.Popen(
            [sys.executable, str(self.script), str(self.port), self.transport],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"the test MCP server exited: {err[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError("the test MCP server did not listen within 30 s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[HttpServer]:
    server = HttpServer(tmp_path).start()
    yield server
    server.kill()


def build_source(ctx, **options):
    return ctx.build("tool_graph_source", ComponentSpec("mcp", options))


def load_servers(tmp_path: Path, servers: list[dict], **options) -> dict[str, ToolServer]:
    ctx = stage_context(tmp_path)
    source = build_source(ctx, servers=servers, **options)
    return {g.server.title: g.server for g in source.load(ctx)}


@pytest.fixture
def executor(tmp_path: Path):
    ctx = stage_context(tmp_path / "executor")
    ex = ctx.build(
        "tool_executor",
        ComponentSpec("mcp", {"call_timeout_s": 10.0, "retry_backoff_s": 0.2}),
    )
    yield ex
    ex.close()


def call(executor, server: ToolServer, name: str, **arguments):
    return executor.call(server, ToolCall(name, arguments))


def test_the_source_lists_the_tools_and_links_them(tmp_path: Path, http_server: HttpServer):
    ctx = stage_context(tmp_path)
    source = build_source(
        ctx, servers=[{"name": "notes", "url": http_server.url, "domain": "productivity"}]
    )
    (graph,) = list(source.load(ctx))
    assert dropped(ctx) == []
    server = graph.server
    assert set(server.tool_names) == NOTE_TOOLS
    assert server.domain == "productivity"
    parameters = server.tool("get_note")["function"]["parameters"]
    assert parameters["required"] == ["note_id"]
    assert server.endpoint is not None
    assert server.endpoint["kind"] == "mcp-http"
    assert server.endpoint["url"] == http_server.url
    assert server.endpoint["transport"] == "streamable-http"
    assert server.endpoint["server_info"]["name"] == "notes-http"
    # the output schema of create_note names note_id, which get_note needs
    edges = {(e.source, e.target) for e in graph.edges}
    assert ("create_note", "get_note") in edges


def test_the_executor_gets_the_servers_real_answers(
    tmp_path: Path, http_server: HttpServer, executor
):
    notes = load_servers(tmp_path, [{"name": "notes", "url": http_server.url}])["notes"]
    created = call(executor, notes, "create_note", text="buy milk")
    assert not created.error, created.output
    note = json.loads(created.output)
    assert http_server.process is not None
    assert note["note_id"].endswith(f"-{http_server.process.pid}")  # made by that process
    fetched = call(executor, notes, "get_note", note_id=note["note_id"])
    assert not fetched.error and json.loads(fetched.output)["text"] == "buy milk"
    missing = call(executor, notes, "get_note", note_id="N-999")
    assert missing.error and "get_note" in missing.output  # a tool error, an observation
    assert call(executor, notes, "server_pid").output == str(http_server.process.pid)
    assert list(executor.starts.values()) == [1]  # one session, reused


def test_headers_come_from_the_environment_and_never_reach_the_records(
    tmp_path: Path, http_server: HttpServer, executor, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("ASTRA_TEST_MCP_TOKEN", "s3cret-token")
    servers = [
        {
            "name": "notes",
            "url": http_server.url,
            "headers": {"Authorization": "Bearer ${ASTRA_TEST_MCP_TOKEN}"},
        }
    ]
    notes = load_servers(tmp_path, servers)["notes"]
    assert notes.endpoint is not None
    assert notes.endpoint["headers"] == {"Authorization": "Bearer ${ASTRA_TEST_MCP_TOKEN}"}
    assert "s3cret-token" not in json.dumps(notes.to_dict())
    caller = call(executor, notes, "whoami")
    assert not caller.error, caller.output
    assert json.loads(caller.output)["authorization"] == "Bearer s3cret-token"

    # an unset variable is a clear error naming the server and the variable, not a crash
    monkeypatch.delenv("ASTRA_TEST_MCP_TOKEN")
    executor.close()
    refused = call(executor, notes, "whoami")
    assert refused.error and "'notes'" in refused.output
    assert "${ASTRA_TEST_MCP_TOKEN}" in refused.output


def test_a_literal_credential_header_is_refused(tmp_path: Path):
    ctx = stage_context(tmp_path)
    with pytest.raises(ConfigError, match="Authorization holds a literal value"):
        build_source(
            ctx,
            servers=[
                {"name": "n", "url": "http://127.0.0.1:1/mcp", "headers": {"Authorization": "x"}}
            ],
        )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"name": "n"}, "give command .* or url"),
        ({"name": "n", "command": ["x"], "url": "http://h/mcp"}, "not both"),
        ({"name": "n", "url": "ftp://h/mcp"}, "url must be an http"),
        ({"name": "n", "url": "http://h/mcp", "env": {"A": "b"}}, "env and cwd are for"),
        ({"name": "n", "url": "http://h/mcp", "transport": "websocket"}, "one of"),
        ({"name": "n", "command": ["x"], "headers": {"X-A": "b"}}, "headers need a url"),
    ],
)
def test_bad_http_server_tables_are_config_errors(tmp_path: Path, table, message):
    ctx = stage_context(tmp_path)
    with pytest.raises(ConfigError, match=message):
        build_source(ctx, servers=[table])


def test_sse_transport(tmp_path: Path, executor, monkeypatch: pytest.MonkeyPatch):
    need_mcp()
    pytest.importorskip("mcp.client.sse", reason="this mcp SDK has no SSE client")
    server = HttpServer(tmp_path, transport="sse").start()
    try:
        monkeypatch.setenv("ASTRA_TEST_MCP_TOKEN", "sse-token")
        headers = {"Authorization": "Bearer ${ASTRA_TEST_MCP_TOKEN}"}
        table = {"name": "notes", "url": server.url, "transport": "sse", "headers": headers}
        notes = load_servers(tmp_path, [table])["notes"]
        assert set(notes.tool_names) == NOTE_TOOLS
        assert notes.endpoint is not None and notes.endpoint["transport"] == "sse"
        created = call(executor, notes, "create_note", text="over sse")
        assert not created.error, created.output
        note_id = json.loads(created.output)["note_id"]
        assert json.loads(call(executor, notes, "get_note", note_id=note_id).output) == {
            "note_id": note_id,
            "text": "over sse",
        }
        assert json.loads(call(executor, notes, "whoami").output)["authorization"] == (
            "Bearer sse-token"
        )
    finally:
        server.kill()


def test_a_server_that_goes_away_fails_its_calls_after_bounded_retries_and_comes_back(
    tmp_path: Path, http_server: HttpServer, executor
):
    notes = load_servers(tmp_path, [{"name": "notes", "url": http_server.url}])["notes"]
    first_pid = call(executor, notes, "server_pid").output
    assert first_pid == str(http_server.process.pid)  # type: ignore[union-attr]
    assert list(executor.starts.values()) == [1]

    http_server.kill()
    started = time.monotonic()
    failed = call(executor, notes, "server_pid")
    took = time.monotonic() - started
    assert failed.error
    assert "'notes'" in failed.output and http_server.url in failed.output
    assert "after 3 attempts" in failed.output
    # the session broke, then three tries to connect again, waiting 0.2 s and 0.4 s
    assert list(executor.starts.values()) == [4]
    assert 0.6 <= took < 30

    # the next call tries again (the server may be back), bounded the same way
    again = call(executor, notes, "server_pid")
    assert again.error and "after 3 attempts" in again.output
    assert list(executor.starts.values()) == [7]

    http_server.start()  # back on the same port, a new process
    back = call(executor, notes, "server_pid")
    assert not back.error, back.output
    assert back.output == str(http_server.process.pid) != first_pid  # type: ignore[union-attr]


def test_a_server_restarted_between_calls_gets_the_call_on_a_new_session(
    tmp_path: Path, http_server: HttpServer, executor
):
    notes = load_servers(tmp_path, [{"name": "notes", "url": http_server.url}])["notes"]
    first = call(executor, notes, "server_pid").output
    http_server.kill()
    http_server.start()
    # the new process does not know the old session (404): the request never ran, so it is
    # sent once more on a new session
    second = call(executor, notes, "server_pid")
    assert not second.error, second.output
    assert second.output == str(http_server.process.pid) != first  # type: ignore[union-attr]


def test_a_call_cut_off_mid_way_fails_and_the_next_call_works(
    tmp_path: Path, http_server: HttpServer
):
    import threading

    notes = load_servers(tmp_path, [{"name": "notes", "url": http_server.url}])["notes"]
    ctx = stage_context(tmp_path / "executor")
    executor = ctx.build("tool_executor", ComponentSpec("mcp", {"call_timeout_s": 4.0}))
    assert not call(executor, notes, "server_pid").error
    results = []
    worker = threading.Thread(
        target=lambda: results.append(call(executor, notes, "wait", seconds=60))
    )
    worker.start()
    time.sleep(1.0)
    http_server.kill()
    http_server.start()
    worker.join(30)
    (cut,) = results
    # the request reached the server, so it is not sent again: it fails, naming the server
    assert cut.error and "connection to MCP server 'notes'" in cut.output
    assert "broke" in cut.output
    try:
        after = call(executor, notes, "server_pid")
        assert not after.error and after.output == str(http_server.process.pid)  # type: ignore[union-attr]
    finally:
        executor.close()


def test_a_url_nothing_listens_on_is_a_clear_error_naming_the_server(tmp_path: Path, executor):
    need_mcp()
    url = f"http://127.0.0.1:{free_port()}/mcp"
    ctx = stage_context(tmp_path)
    source = build_source(
        ctx,
        servers=[{"name": "nowhere", "url": url}],
        connect_attempts=2,
        retry_backoff_s=0.1,
        start_timeout_s=10,
    )
    assert list(source.load(ctx)) == []
    (drop,) = dropped(ctx)
    assert drop["reason"] == "mcp-server-failed" and drop["id"] == "mcp-http/nowhere"
    assert "'nowhere'" in drop["detail"] and url in drop["detail"]
    assert "could not be reached" in drop["detail"] and "after 2 attempts" in drop["detail"]

    server = ToolServer(
        title="nowhere",
        tools=({"type": "function", "function": {"name": "ping", "parameters": {}}},),
        endpoint={"kind": "mcp-http", "url": url},
    )
    result = call(executor, server, "ping")
    assert result.error and "'nowhere'" in result.output and "after 3 attempts" in result.output


def authors_row(name: str, call_info: dict) -> dict:
    """A row of the authors' mcp_servers.jsonl whose tools mirror the test server's."""
    tools = [
        {
            "name": "create_note",
            "description": "Create a note with the given text.",
            "parameters": {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            },
        },
        {
            "name": "get_note",
            "description": "Return the note with this id.",
            "parameters": {
                "type": "object",
                "properties": {"note_id": {"type": "string"}},
                "required": ["note_id"],
            },
        },
        {
            "name": "whoami",
            "description": "Return what the request carried.",
            "parameters": {"type": "object", "properties": {}},
        },
    ]
    return {
        "base_info": {
            "group_info": {"server_title": name, "server_name": name, "domain": "notes"},
            "tool_list": tools,
        },
        "call_info": call_info,
    }


def read_authors_rows(tmp_path: Path, rows: list[dict]) -> dict[str, ToolServer]:
    path = tmp_path / "mcp_servers.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ctx = stage_context(tmp_path)
    source = ctx.build("tool_graph_source", ComponentSpec("server-file", {"path": str(path)}))
    return {g.server.title: g.server for g in source.load(ctx)}


def test_the_authors_url_rows_are_called_over_http(
    tmp_path: Path, http_server: HttpServer, executor, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("ASTRA_TEST_MCP_TOKEN", "row-token")
    monkeypatch.setenv("SMITHERY_API_KEY", "smithery-key-123")
    smithery_config = json.dumps({"units": "metric"})
    servers = read_authors_rows(
        tmp_path,
        [
            authors_row(
                "aistudio",
                {"url": http_server.url, "headers": {"Authorization": "${ASTRA_TEST_MCP_TOKEN}"}},
            ),
            authors_row(
                "smithery",
                {
                    "python_sdk_url": http_server.url
                    + "?config={config_b64}&api_key={smithery_api_key}",
                    "python_sdk_config": smithery_config,
                },
            ),
        ],
    )
    assert servers["aistudio"].endpoint["kind"] == "mcp-http"  # type: ignore[index]
    assert servers["smithery"].endpoint["kind"] == "smithery"  # type: ignore[index]

    made = call(executor, servers["aistudio"], "create_note", text="from the authors' row")
    assert not made.error, made.output
    assert json.loads(call(executor, servers["aistudio"], "whoami").output)["authorization"] == (
        "row-token"
    )
    seen = json.loads(call(executor, servers["smithery"], "whoami").output)
    assert seen["api_key"] == "smithery-key-123"
    assert seen["config"] == smithery_config  # {config_b64} is the base64 of the config

    # a refused key (the server answers 401): no retries, and the key is not in the message
    monkeypatch.setenv("SMITHERY_API_KEY", "refused-key-456")
    executor.close()
    denied = call(executor, servers["smithery"], "whoami")
    assert denied.error and "'smithery'" in denied.output and "401" in denied.output
    assert "refused-key-456" not in denied.output
    assert base64.b64encode(smithery_config.encode()).decode() not in denied.output


@pytest.mark.slow
def test_astra_run_probes_an_http_server_and_goes_on_past_a_dead_one(
    tmp_path: Path, http_server: HttpServer
):
    dead = f"http://127.0.0.1:{free_port()}/mcp"
    config = f"""
[run]
name = "mcp-http"
seed = 0

[synth-trajectories.source]
name = "mcp"
min_tools = 2
connect_attempts = 2
retry_backoff_s = 0.1

[[synth-trajectories.source.servers]]
name = "notes"
url = "{http_server.url}"
headers = {{ Authorization = "Bearer ${{ASTRA_TEST_MCP_TOKEN}}" }}
scenarios = [{{ text = "buy milk" }}]

[[synth-trajectories.source.servers]]
name = "gone"
url = "{dead}"

[synth-trajectories.sampler]
name = "mcp-probe"
trajectories_per_server = 3
skip_tools = ["wait", "whoami", "server_pid"]
"""
    (tmp_path / "run.toml").write_text(config)
    out = tmp_path / "out"
    env = {**os.environ, "ASTRA_TEST_MCP_TOKEN": "run-token"}
    done = astra("run", str(tmp_path / "run.toml"), "--out", str(out), "-q", env=env)
    assert done.returncode == 0, done.stderr
    stage = out / "synth-trajectories"
    rows = [
        json.loads(line)
        for p in sorted(stage.glob("data-*.jsonl"))
        for line in p.read_text().splitlines()
    ]
    assert rows and all(r["metadata"]["server"] == "notes" for r in rows)
    answers = [m["content"] for r in rows for m in r["messages"] if m["role"] == "tool"]
    assert any(f"-{http_server.process.pid}" in a for a in answers)  # type: ignore[union-attr]
    drops = [json.loads(line) for line in (stage / "dropped.jsonl").read_text().splitlines()]
    assert any(d["id"] == "mcp-http/gone" and d["reason"] == "mcp-server-failed" for d in drops)
    written = "\n".join(p.read_text() for p in out.rglob("*") if p.is_file())
    assert "run-token" not in written  # the token never reaches data, drops or manifests
