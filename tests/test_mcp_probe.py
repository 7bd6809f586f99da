"""``synth-trajectories`` from live MCP servers, end to end through ``astra run``: the offline
``mcp-probe`` sampler on mcp-server-time, mcp-server-git, mcp-server-sqlite and a server with
output schemas, and the ``offline-chain-walk`` sampler driving a live server through the ``mcp``
executor. Every tool message in the data must be what the live server answered. Also the
probe's planning rules on records alone (no process)."""

from __future__ import annotations

import contextlib
import json
import os
import random
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from astra_trajectories.probe_plans import Planner
from astra_trajectories.probe_sampler import imperative, parse_output
from conftest import astra
from test_mcp_support import (
    COMMIT_MESSAGE,
    ROWS,
    WELCOME,
    git_command,
    make_db,
    make_repo,
    notes_command,
    sqlite_command,
    time_command,
)

import astra_core
from astra_core.config import parse_config
from astra_core.records import ToolServer

NOTES_SKIP = ["crash", "wait", "read_env"]  # test-only tools a probe must not call


def toml_list(items: list[str]) -> str:
    return json.dumps(items)  # a JSON array of strings is a TOML array


def read_rows(out: Path) -> list[dict[str, Any]]:
    stage = out / "synth-trajectories"
    return [
        json.loads(line)
        for p in sorted(stage.glob("data-*.jsonl"))
        for line in p.read_text().splitlines()
    ]


def read_drops(out: Path) -> list[dict[str, Any]]:
    path = out / "synth-trajectories" / "dropped.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def calls_and_outputs(row: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """(tool, arguments, tool message) for every call, checking each call is answered."""
    answers = {m["tool_call_id"]: m["content"] for m in row["messages"] if m["role"] == "tool"}
    out = []
    for message in row["messages"]:
        for call in message.get("tool_calls") or ():
            assert call["id"] in answers, "a tool call without a tool message"
            arguments = json.loads(call["function"]["arguments"])
            out.append((call["function"]["name"], arguments, answers[call["id"]]))
    return out


def check_openai_format(row: dict[str, Any]) -> None:
    tools = {t["function"]["name"]: t for t in row["tools"]}
    for name, arguments, _ in calls_and_outputs(row):
        assert name in tools, f"{name} is not an offered tool"
        jsonschema.validate(arguments, tools[name]["function"]["parameters"])
    assert row["messages"][0]["role"] == "system" and row["messages"][1]["role"] == "user"
    assert row["messages"][-1]["role"] == "assistant"


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("mcp-probe")
    repo, db = make_repo(tmp), make_db(tmp)
    config = f"""
[run]
name = "mcp-probe"
seed = 0

[synth-trajectories.source]
name = "mcp-stdio"
min_tools = 2

[[synth-trajectories.source.servers]]
name = "time"
command = {toml_list(time_command())}
domain = "time"

[[synth-trajectories.source.servers.scenarios]]
timezone = "Asia/Tokyo"
source_timezone = "UTC"
time = "12:00"
target_timezone = "Asia/Tokyo"

[[synth-trajectories.source.servers.scenarios]]
timezone = "Europe/Paris"
source_timezone = "America/New_York"
time = "09:30"
target_timezone = "Europe/Paris"

[[synth-trajectories.source.servers]]
name = "git"
command = {toml_list(git_command(repo))}
domain = "software"
scenarios = [{{repo_path = "{repo}", revision = "HEAD", branch_type = "local", target = "HEAD"}}]

[[synth-trajectories.source.servers]]
name = "sqlite"
command = {toml_list(sqlite_command(db))}
domain = "databases"

[[synth-trajectories.source.servers.scenarios]]
table_name = "people"
"read_query.query" = "SELECT name, age FROM people ORDER BY id"

[[synth-trajectories.source.servers]]
name = "notes"
command = {toml_list(notes_command(tmp))}
scenarios = [{{text = "buy milk"}}, {{text = "call the plumber"}}]

[synth-trajectories.sampler]
name = "mcp-probe"
trajectories_per_server = 6
skip_tools = {toml_list(NOTES_SKIP)}
"""
    (tmp / "run.toml").write_text(config)
    done = astra("run", str(tmp / "run.toml"), "--out", str(tmp / "out"), "-q")
    assert done.returncode == 0, done.stderr
    return tmp / "out"


@pytest.mark.slow
def test_probe_writes_trajectories_from_every_live_server(probe_run: Path):
    rows = read_rows(probe_run)
    assert read_drops(probe_run) == []
    by_server: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_server.setdefault(row["metadata"]["server"], []).append(row)
        assert row["status"] == "ok"
        assert row["metadata"]["sampler"] == "mcp-probe"
        assert "not the paper's LLM rollout" in row["metadata"]["note"]
        check_openai_format(row)
        # the task names exactly the calls that were made, in order
        assert [name for name, _, _ in calls_and_outputs(row)] == row["task"]["target_tools"]
    assert set(by_server) == {"time", "git", "sqlite", "notes"}
    assert all(len(v) >= 2 for v in by_server.values())


@pytest.mark.slow
def test_tool_messages_are_what_the_live_servers_answered(probe_run: Path):
    rows = read_rows(probe_run)
    calls = [(r["metadata"]["server"], *c) for r in rows for c in calls_and_outputs(r)]
    git_texts = [out for server, name, _, out in calls if server == "git" and name == "git_log"]
    git_texts += [out for server, name, _, out in calls if server == "git" and name == "git_show"]
    assert git_texts and all(COMMIT_MESSAGE in text for text in git_texts)
    queried = [out for server, name, _, out in calls if server == "sqlite" and name == "read_query"]
    assert queried
    for text in queried:
        assert parse_output(text) == [{"name": n, "age": a} for _, n, a in ROWS]
    times = [(args, out) for server, name, args, out in calls if name == "get_current_time"]
    assert times
    for args, out in times:
        assert json.loads(out)["timezone"] == args["timezone"]
    # read-only by default: git tools the server marks as writing were never called
    called = {name for server, name, _, _ in calls if server == "git"}
    assert called and called.isdisjoint({"git_commit", "git_add", "git_reset", "git_checkout"})


@pytest.mark.slow
def test_values_flow_from_one_live_call_to_the_next(probe_run: Path):
    rows = [r for r in read_rows(probe_run) if r["metadata"]["server"] == "notes"]
    handed_off = 0
    for row in rows:
        steps = calls_and_outputs(row)
        for i, (name, args, _) in enumerate(steps):
            if name == "get_note":
                earlier = [json.loads(out) for _, _, out in steps[:i]]
                ids = {e.get("note_id") for e in earlier} | {
                    n["note_id"] for e in earlier for n in e.get("notes", [])
                }
                # the id came out of an earlier live answer, not from the config
                assert args["note_id"] in ids
                handed_off += 1
    assert handed_off >= 1


@pytest.mark.slow
def test_rerun_resumes_without_calling_again(probe_run: Path):
    before = read_rows(probe_run)
    done = astra("run", str(probe_run.parent / "run.toml"), "--out", str(probe_run), "-q")
    assert done.returncode == 0, done.stderr
    assert len(read_rows(probe_run)) == len(before)


@pytest.mark.slow
def test_offline_chain_walk_drives_a_live_server_through_the_mcp_executor(tmp_path: Path):
    config = f"""
[run]
name = "mcp-chain-walk"
seed = 0

[synth-trajectories.source]
name = "mcp-stdio"

[[synth-trajectories.source.servers]]
name = "notes"
command = {toml_list(notes_command(tmp_path))}
scenarios = [{{text = "buy milk"}}, {{text = "call the plumber"}}]

[synth-trajectories.sampler]
name = "offline-chain-walk"
executor = "mcp"
"""
    (tmp_path / "run.toml").write_text(config)
    done = astra("run", str(tmp_path / "run.toml"), "--out", str(tmp_path / "out"), "-q")
    assert done.returncode == 0, done.stderr
    rows = read_rows(tmp_path / "out")
    assert rows and all(r["metadata"]["sampler"] == "offline-chain-walk" for r in rows)
    made = {WELCOME["note_id"]: WELCOME["text"]}
    for row in rows:
        check_openai_format(row)
        assert 2 <= len(row["metadata"]["chain"]) <= 5
        for name, args, out in calls_and_outputs(row):
            data = json.loads(out)
            if name == "create_note":
                assert data["text"] == args["text"]
                made[data["note_id"]] = data["text"]
            if name == "get_note":
                assert data == {"note_id": args["note_id"], "text": made[args["note_id"]]}
    assert len(made) > 1  # ids minted by the live server, read back from it


def child_commands() -> list[str]:
    """The command lines of this process's live children (from /proc)."""
    pids = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError):
            pids += (task / "children").read_text().split()
    commands = []
    for pid in pids:
        with contextlib.suppress(OSError):
            commands.append(Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " "))
    return commands


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
def test_a_stage_stops_the_servers_its_executor_started(tmp_path: Path):
    """Embedded runs: the ``mcp`` executor the sampler built is closed with its stage, so the
    server process does not outlive it (it used to live until the interpreter exited)."""
    command = notes_command(tmp_path)
    config = parse_config(
        {
            "run": {"name": "lifecycle"},
            "synth-trajectories": {
                "source": {
                    "name": "mcp-stdio",
                    "servers": [
                        {"name": "notes", "command": command, "scenarios": [{"text": "buy milk"}]}
                    ],
                },
                "sampler": {"name": "offline-chain-walk", "executor": "mcp"},
            },
        }
    )
    report = astra_core.run(config, tmp_path / "out", quiet=True)
    assert report.stage("synth-trajectories").total > 0  # the server did answer
    assert not [c for c in child_commands() if command[1] in c]


# -- planning rules, on records alone -------------------------------------------------------


def tool(name: str, properties: dict[str, Any], required: list[str], doc: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": doc,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


def planner_server(**endpoint: Any) -> ToolServer:
    tools = (
        tool(
            "search_orders",
            {"status": {"type": "string", "enum": ["open"]}},
            ["status"],
            "Search orders by status.",
        ),
        tool("get_order", {"order_id": {"type": "string"}}, ["order_id"], "Get one order."),
        tool("cancel_order", {"order_id": {"type": "string"}}, ["order_id"], "Cancel an order."),
        tool("run_sql", {"query": {"type": "string"}}, ["query"], "Runs a query."),
    )
    returns = {
        "search_orders": {
            "type": "object",
            "properties": {
                "orders": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"order_id": {"type": "string"}}},
                }
            },
        }
    }
    base = {
        "kind": "mcp-stdio",
        "command": ["x"],
        "returns": returns,
        "annotations": {"cancel_order": {"readOnlyHint": False, "destructiveHint": True}},
    }
    return ToolServer(title="orders", tools=tools, endpoint={**base, **endpoint})


def draw_all(planner: Planner, n: int = 200) -> list:
    rng = random.Random(0)
    plans = [planner.draw(rng, min_calls=1, max_calls=3) for _ in range(n)]
    return [p for p in plans if p is not None]


def test_planner_fills_arguments_from_enums_scenarios_and_earlier_outputs():
    server = planner_server(scenarios=[{"run_sql.query": "SELECT 1", "order_id": "O-9"}])
    plans = draw_all(Planner(server))
    steps = [s for p in plans for s in p.steps]
    assert {s.tool for s in steps} == {"search_orders", "get_order", "run_sql"}
    for plan in plans:
        for index, step in enumerate(plan.steps):
            (binding,) = step.bindings
            if step.tool == "search_orders":
                assert (binding.source, binding.value) == ("schema", "open")
            if step.tool == "run_sql":
                assert (binding.source, binding.value) == ("user", "SELECT 1")
            if step.tool == "get_order":
                earlier = plan.tools[:index]
                if "search_orders" in earlier:  # a published output wins over a stated value
                    assert binding.source == "step"
                    assert binding.path == ("orders", "[]", "order_id")
                else:
                    assert (binding.source, binding.value) == ("user", "O-9")


def test_planner_skips_writing_tools_and_tools_it_cannot_fill():
    plans = draw_all(Planner(planner_server()))
    called = {t for p in plans for t in p.tools}
    assert "cancel_order" not in called  # annotated as writing
    assert "run_sql" not in called  # no value for its query
    assert "cancel_order" in {
        t for p in draw_all(Planner(planner_server(), allow_writes=True)) for t in p.tools
    }
    assert "search_orders" not in {
        t
        for p in draw_all(Planner(planner_server(), skip_tools=["search_orders"]))
        for t in p.tools
    }


def test_outputs_parse_and_descriptions_read_as_requests():
    assert parse_output('{"a": 1}') == {"a": 1}
    assert parse_output("[{'name': 'people'}]") == [{"name": "people"}]
    assert parse_output("On branch main") == "On branch main"
    assert parse_output("[not python") == "[not python"
    assert [imperative(w) for w in ("Shows", "Switches", "Lists", "Does", "List", "Queries")] == [
        "show",
        "switch",
        "list",
        "do",
        "list",
        "query",
    ]
