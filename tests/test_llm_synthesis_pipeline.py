"""The whole ``llm-pipeline`` sampler on a small ToolServer (the bundled weather server, run for
real by the ``python-catalog`` executor, or played by the ``llm-emulator``), and the
``synth-trajectories`` stage run through ``astra_core.run`` with a config naming it.

An LLM cannot run here: every LLM call goes over real HTTP to the package's loopback server
(``astra_llm.loopback_server``), whose handler (``ScriptedLLM``) answers with scripted,
real-shaped ``chat.completion`` bodies chosen from what each request holds (the prompt's step,
the tools offered, the tool outputs so far), like a deterministic LLM. One test then replays the
same run from the response cache alone (``cache_mode="replay"``, no server).
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from astra_llm.loopback_server import LoopbackServer, ReceivedRequest, Reply, chat_completion
from astra_tool_catalog.bundled_source import catalog_server
from astra_tool_catalog.schema_flow import SchemaFlowGraphBuilder
from astra_tool_catalog.servers import SERVERS
from astra_trajectories.llm_chain_verification import unsatisfied_arguments

import astra_core
from astra_core.context import StageContext
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.records import ToolCall, ToolGraph, ToolServer, Trajectory
from astra_core.registry import ComponentBuilder
from astra_core.store import RecordStore

MODEL = "scripted"
PROPOSED = [
    ["search_locations", "get_forecast", "get_sun_times"],
    ["search_locations", "get_weather_alerts", "get_alert_details"],
    ["search_locations", "get_current_weather"],
]
SERVER_TASK_TOOLS = ["search_locations", "get_weather_alerts", "get_alert_details"]
JUDGE_SCORES = {"first turn": (1, 1), "follows tool responses": (1, 0.5)}


def _reply(content: str, tool_calls: list[dict[str, Any]] | None = None) -> Reply:
    return Reply(
        chat_completion(
            content, tool_calls=tool_calls, model=MODEL, prompt_tokens=900, completion_tokens=120
        )
    )


def _json(value: Any) -> Reply:
    return _reply(f"<think>Working on it.</think>\n```json\n{json.dumps(value)}\n```")


def _find(data: Any, key: str) -> Any:
    """The first value under ``key`` anywhere in a decoded tool output."""
    if isinstance(data, dict):
        if key in data:
            return data[key]
        data = list(data.values())
    if isinstance(data, list):
        for item in data:
            found = _find(item, key)
            if found is not None:
                return found
    return None


def _decoded(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:  # a tool that answers in plain text
        return text


class ScriptedLLM:
    """Answers every prompt of the pipeline like a deterministic LLM would. It remembers which
    tools each query it wrote needs, so the agent it plays can follow them; the agent takes each
    argument from the latest tool output holding a key of that name, else from
    ``user_values`` (what a user would state)."""

    def __init__(
        self,
        user_values: dict[str, Any],
        *,
        proposed: list[list[str]] = PROPOSED,
        server_tools: list[str] = SERVER_TASK_TOOLS,
        judge_status: int = 200,
    ) -> None:
        self.user_values = user_values
        self.proposed = proposed
        self.server_tools = server_tools
        self.targets: dict[str, list[str]] = {}
        self.judge_status = judge_status
        self.lock = threading.Lock()

    def remember(self, query: str, tools: list[str]) -> str:
        with self.lock:
            self.targets[query] = list(tools)
        return query

    def __call__(self, request: ReceivedRequest) -> Reply:
        body = request.body
        if body.get("tools"):
            return self.agent(body["messages"], body["tools"])
        system, user = body["messages"][0]["content"], body["messages"][1]["content"]
        if system.startswith("You find dependency relationships"):
            return _json(
                [{"dependent": "yes", "chain": c, "task": "t"} for c in self.proposed]
                + [{"dependent": "not sure", "chain": self.proposed[0][::-1]}]
            )
        if system.startswith("You check whether a tool chain"):
            return _json(
                {"reason": "coherent", "is_valid": True, "user_query": "q", "task_plan": "p"}
            )
        chain = re.search(r"Tool chain, called in this order: (.*)", user)
        if system.startswith("You write the request a user would make") and chain:
            tools = chain.group(1).split(" -> ")
            query = self.remember(f"Help me with this ({len(tools)} steps).", tools)
            return _json({"valid": True, "query": query + " " + "/".join(tools)})
        if system.startswith("You plan which tools"):
            query = re.search(r"User request: (.*)", user).group(1)
            return _json({"plan": "in order", "chain": query.rsplit(" ", 1)[1].split("/")})
        if system.startswith("You write realistic user requests"):
            return self.tasks(user)
        if system.startswith("You rewrite user requests"):
            source = re.search(r"Request: (.*)", user).group(1)
            mode = (
                "paraphrase"
                if "other wording" in user
                else "complexity"
                if "adding realistic requirements" in user
                else "persona"
            )
            query = f"{source} (asked as a {mode} rewrite)"
            return _json({"variations": [self.remember(query, self.targets[source])]})
        if system.startswith("You rate user requests"):
            low = "complexity rewrite" in user  # scored below the threshold on purpose
            return _json(
                {
                    dim: {"reason": "r", "score": 2 if low else 4}
                    for dim in (
                        "question_quality",
                        "scenario_realism",
                        "tool_necessity",
                        "difficulty",
                        "uniqueness",
                    )
                }
            )
        if system.startswith("You play the tool"):
            args = json.loads(user.rsplit("(", 1)[1][:-1])
            return _json(
                {
                    "status": "success",
                    "output": {
                        **args,
                        "locations": [{"location_id": "LOC-777", "name": "Lisbon"}],
                        "alerts": [{"alert_id": "ALR-777"}],
                        "emulated": True,
                    },
                }
            )
        if system.startswith("You are a strict judge"):
            if self.judge_status != 200:
                return Reply(
                    {"error": {"message": "context too long", "type": "invalid"}},
                    status=self.judge_status,
                )
            for key, (u, p) in JUDGE_SCORES.items():
                if key in user:
                    return _json({"reason": "r", "understanding": u, "planning": p})
            count = re.search(r"Score each of the (\d+) tool calls", user)
            if count:
                return _json(
                    {
                        "calls": [
                            {"index": i + 1, "reason": "r", "score": 1}
                            for i in range(int(count.group(1)))
                        ]
                    }
                )
            return _json({"reason": "r", "correlation": 1, "summary": 1})
        raise AssertionError(f"unexpected prompt: {system[:80]}")

    def tasks(self, user: str) -> Reply:
        chain = re.search(r"Tool execution chain: (.*)", user)
        values = ", ".join(str(v) for v in self.user_values.values())
        if chain:
            tools = chain.group(1).split(" -> ")
            steps = ", then ".join(t.replace("_", " ") for t in tools)
            query = f"With {values}: please {steps}."
            return _json({"tasks": [{"query": self.remember(query, tools)}]})
        count = int(re.search(r"each needing (\d+) of these tools", user).group(1))
        tools = self.server_tools[:count]
        query = self.remember(f"Could you help me out with {values} ({count})?", tools)
        return _json(
            {
                "tasks": [
                    {"query": query, "target_tools": tools},
                    {"query": "Pollen today?", "target_tools": ["get_pollen"]},
                ]
            }
        )

    def agent(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
        query = next(m["content"] for m in messages if m["role"] == "user")
        target = self.targets.get(query, [])
        made = [c for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or ()]
        outputs = [_decoded(m["content"]) for m in messages if m["role"] == "tool"]
        if len(made) >= len(target):
            last = json.dumps(outputs[-1])[:200] if outputs else "nothing"
            return _reply(f"Here is what I found: {last}")
        name = target[len(made)]
        schema = next(t for t in tools if t["function"]["name"] == name)["function"]
        arguments = {}
        for param in schema["parameters"].get("required", []):
            found = next(
                (v for v in (_find(o, param) for o in reversed(outputs)) if v is not None), None
            )
            arguments[param] = found if found is not None else self.user_values[param]
        call = {
            "id": f"call_{len(made)}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)},
        }
        return _reply(f"Step {len(made) + 1}: {name}.", [call])


@pytest.fixture(scope="module")
def registry() -> Any:
    return load_plugins().registry


@pytest.fixture(scope="module")
def weather() -> ToolServer:
    return catalog_server(SERVERS["weather"], state_seed=0, scenarios=3)


def sampler_options(base_url: str, cache: Path, **extra: Any) -> dict[str, Any]:
    return {
        "llm": {
            "name": "openai-compatible",
            "model": MODEL,
            "base_url": base_url,
            "cache_dir": str(cache),
            "max_retries": 0,
        },
        "executor": "python-catalog",
        "workers": 4,
        "max_chains_per_server": 4,
        "vote_samples": 3,
        "server_tasks": 2,
        **extra,
    }


def run_sampler(
    registry: Any, graph: ToolGraph, tmp: Path, options: dict[str, Any]
) -> tuple[list[Trajectory], StageContext]:
    builder = ComponentBuilder(registry, seed=0, workdir=tmp)
    sampler = builder.build("trajectory_sampler", ComponentSpec("llm-pipeline", options))
    ctx = StageContext(
        "synth-trajectories",
        run_dir=tmp,
        builder=builder,
        store=RecordStore(tmp / "synth-trajectories", Trajectory).open(),
        quiet=True,
    )
    return list(sampler.sample(graph, ctx)), ctx


@pytest.fixture(scope="module")
def python_run(registry, weather, tmp_path_factory) -> tuple[list[Trajectory], StageContext, Path]:
    tmp = tmp_path_factory.mktemp("python-run")
    graph = SchemaFlowGraphBuilder().build(weather)
    with LoopbackServer(ScriptedLLM(weather.endpoint["scenarios"][0])) as server:
        trajectories, ctx = run_sampler(
            registry, graph, tmp, sampler_options(server.base_url, tmp / "llm-cache")
        )
    return trajectories, ctx, tmp


def assert_valid_sft(trajectory: Trajectory, server: ToolServer) -> None:
    """Every call names an offered tool, its arguments validate against that tool's JSON
    schema, and every call is answered by exactly one tool message."""
    offered = {t["function"]["name"]: t["function"]["parameters"] for t in trajectory.tools}
    assert trajectory.tools == server.tools
    messages = trajectory.messages
    assert messages[0]["role"] == "system" and messages[1] == {
        "role": "user",
        "content": trajectory.task.query,
    }
    pending: list[str] = []
    for message in messages[2:]:
        if message["role"] == "assistant":
            assert not pending, "a call was left unanswered"
            for call in message.get("tool_calls") or ():
                name = call["function"]["name"]
                assert name in offered
                jsonschema.validate(json.loads(call["function"]["arguments"]), offered[name])
                pending.append(call["id"])
        else:
            assert message["role"] == "tool" and message["tool_call_id"] == pending.pop(0)
    assert not pending and messages[-1]["role"] == "assistant"
    assert not messages[-1].get("tool_calls") and messages[-1]["content"]


def test_sample_writes_valid_judged_trajectories_with_real_tool_outputs(
    python_run, weather, registry, tmp_path
):
    trajectories, ctx, _ = python_run
    kept = [t for t in trajectories if t.status == "ok"]
    assert len(kept) >= 6
    for trajectory in kept:
        assert_valid_sft(trajectory, weather)
        assert set(trajectory.task.target_tools) <= set(weather.tool_names)
        assert trajectory.reward == trajectory.scores["overall"] >= 0.6
        assert len(trajectory.scores) == 8  # the seven and their mean
        meta = trajectory.metadata
        if meta["origin"] == "chain":
            assert 2 <= meta["chain_length"] <= 5
            assert unsatisfied_arguments(weather, tuple(meta["chain"])) == []
        # the outputs are real: the same calls on a fresh session give the same outputs
        session = (
            ComponentBuilder(registry, seed=0, workdir=tmp_path)
            .build("tool_executor", "python-catalog")
            .open_session("replay")
        )
        outputs = [m["content"] for m in trajectory.messages if m["role"] == "tool"]
        replayed = [
            session.call(
                weather, ToolCall(c["function"]["name"], json.loads(c["function"]["arguments"]))
            ).output
            for c in trajectory.tool_calls
        ]
        assert outputs == replayed
    assert {t.task.origin for t in kept} == {"chain", "server"}
    assert {t.task.augmentation for t in kept} == {None, "paraphrase", "persona"}
    drops = ctx.store.dropped_counts()
    assert drops["task-unknown-tool"] == 2  # once per server-task request
    assert drops["task-below-threshold"] >= 3  # the complexity rewrites
    assert not [t for t in trajectories if t.status == "failed"]


def test_a_rerun_replays_from_the_cache_without_any_server(python_run, registry, weather):
    """The first run's answers, cached on disk, replayed with ``cache_mode="replay"`` and a URL
    where nothing listens: the same trajectories, byte for byte."""
    trajectories, _, tmp = python_run
    options = sampler_options("http://127.0.0.1:9/v1", tmp / "llm-cache")
    options["llm"]["cache_mode"] = "replay"
    again, _ = run_sampler(
        registry, SchemaFlowGraphBuilder().build(weather), tmp / "again", options
    )
    assert [t.to_json() for t in again] == [t.to_json() for t in trajectories]


def test_emulated_tools_with_injected_failures(registry, weather, tmp_path):
    """The weather server played by the ``llm-emulator`` (the sampler lends it its llm)."""
    with LoopbackServer(ScriptedLLM(weather.endpoint["scenarios"][0])) as server:
        options = sampler_options(
            server.base_url,
            tmp_path / "llm-cache",
            executor={"name": "llm-emulator", "failure_rate": 0.3},
            augmentations=[],
            back_translation=False,
            vote_samples=1,
            judge_threshold=0.0,
        )
        trajectories, _ = run_sampler(
            registry, SchemaFlowGraphBuilder().build(weather), tmp_path, options
        )
        emulated = [
            r
            for r in server.requests
            if r.body["messages"][0]["content"].startswith("You play the tool")
        ]
    kept = [t for t in trajectories if t.status == "ok"]
    assert kept and len(kept) == len(trajectories)
    outputs = [json.loads(m["content"]) for t in kept for m in t.messages if m["role"] == "tool"]
    injected = [o for o in outputs if "error" in o]
    assert sum(t.metadata["injected_failures"] for t in kept) == len(injected) > 0
    assert len(emulated) == len(outputs) - len(injected)  # failures never reach the LLM
    assert all(o["emulated"] for o in outputs if "error" not in o)
    for trajectory in kept:
        assert_valid_sft(trajectory, weather)
        status = trajectory.scores["tool_call_status"]
        errors = sum(
            "error" in json.loads(m["content"]) for m in trajectory.messages if m["role"] == "tool"
        )
        assert status == pytest.approx(1 - errors / len(trajectory.tool_calls))


CONFIG = """
[run]
name = "llm-trajectories"
seed = 0

[synth-trajectories.source]
name = "bundled-catalog"
servers = ["weather"]

[synth-trajectories.sampler]
name = "llm-pipeline"
executor = "python-catalog"
max_chains_per_server = 3
vote_samples = 1
server_tasks = 2
augmentations = ["paraphrase"]

[synth-trajectories.sampler.llm]
name = "openai-compatible"
model = "scripted"
base_url = "{llm_url}"
max_retries = 0
cache_dir = "llm-cache"
"""

JUDGE = """
[synth-trajectories.sampler.judge_llm]
name = "openai-compatible"
model = "judge"
base_url = "{judge_url}"
max_retries = 0
"""


def test_the_stage_runs_through_astra_core_run_and_resumes(registry, weather, tmp_path):
    config = tmp_path / "run.toml"
    out = tmp_path / "out"
    with LoopbackServer(ScriptedLLM(weather.endpoint["scenarios"][0])) as server:
        config.write_text(CONFIG.format(llm_url=server.base_url))
        report = astra_core.run(config, out, quiet=True)
        calls = server.count
        stage = out / "synth-trajectories"
        rows = [
            json.loads(line)
            for p in sorted(stage.glob("data-*.jsonl"))
            for line in p.read_text().splitlines()
        ]
        assert rows and all(r["status"] == "ok" for r in rows)
        (summary,) = report.stages
        assert summary.written == len(rows) and summary.dropped["task-unknown-tool"] == 2
        for row in rows:
            assert_valid_sft(Trajectory.from_dict(row), weather)
        # a re-run resumes: nothing new is written and the LLM is not paid again
        again = astra_core.run(config, out, quiet=True)
        assert again.stages[0].written == 0 and again.stages[0].total == len(rows)
        assert server.count == calls
    assert (out / "synth-trajectories" / "llm-cache").is_dir()  # relative: in the stage dir


def test_a_failing_judge_fails_every_record_none_is_kept(registry, weather, tmp_path):
    """The judge has its own endpoint (``judge_llm``), which rejects every request (HTTP 400):
    the records fail with that reason; none is written as a pass."""
    config = tmp_path / "run.toml"
    out = tmp_path / "out"
    with (
        LoopbackServer(ScriptedLLM(weather.endpoint["scenarios"][0])) as llm,
        LoopbackServer(ScriptedLLM(weather.endpoint["scenarios"][0], judge_status=400)) as judge,
    ):
        config.write_text(
            CONFIG.format(llm_url=llm.base_url) + JUDGE.format(judge_url=judge.base_url)
        )
        report = astra_core.run(config, out, quiet=True)
        assert judge.count > 0
        assert all(r.body["model"] == "judge" for r in judge.requests)
    (summary,) = report.stages
    assert summary.written == 0 and summary.total == 0
    assert summary.dropped["judge-llm-failed"] >= 3
    dropped = [
        json.loads(line)
        for line in (out / "synth-trajectories" / "dropped.jsonl").read_text().splitlines()
    ]
    judged = [d for d in dropped if d["reason"] == "judge-llm-failed"]
    assert all("context too long" in d["detail"] for d in judged)


MCP_CONFIG = """
[run]
name = "llm-trajectories-mcp"
seed = 0

[synth-trajectories.source]
name = "mcp-stdio"

[[synth-trajectories.source.servers]]
name = "notes"
command = {command}
domain = "productivity"
scenarios = [{{ text = "Buy oat milk" }}]

[synth-trajectories.sampler]
name = "llm-pipeline"
executor = "mcp"
vote_samples = 1
back_translation = false
server_tasks = 1
server_task_tools = [2]
augmentations = []

[synth-trajectories.sampler.llm]
name = "openai-compatible"
model = "scripted"
base_url = "{llm_url}"
max_retries = 0
"""


def test_a_live_mcp_server_answers_the_agent_calls(tmp_path):
    """The ``notes`` MCP server of the MCP tests (the mcp SDK's own server API, over stdio) as
    source and executor: the tool outputs in the data come from that process."""
    from test_mcp_support import notes_command

    command = notes_command(tmp_path)
    config = tmp_path / "run.toml"
    llm = ScriptedLLM(
        {"text": "Buy oat milk", "note_id": "N-000"},
        proposed=[["create_note", "get_note"], ["create_note", "list_notes"]],
        server_tools=["create_note", "list_notes"],
    )
    with LoopbackServer(llm) as server:
        config.write_text(MCP_CONFIG.format(command=json.dumps(command), llm_url=server.base_url))
        report = astra_core.run(config, tmp_path / "out", quiet=True)
    rows = [
        Trajectory.from_dict(json.loads(line))
        for p in sorted((tmp_path / "out" / "synth-trajectories").glob("data-*.jsonl"))
        for line in p.read_text().splitlines()
    ]
    assert rows and report.stages[0].written == len(rows)
    # get_note's note_id is minted by the server: a chain may not start with it
    assert report.stages[0].dropped["chain-unsatisfiable-argument"] >= 1
    assert all(r.metadata["chain"][0] != "get_note" for r in rows if r.metadata["chain"])
    created = 0
    for row in rows:
        assert row.metadata["server"] == "notes" and row.metadata["executor"] == "mcp"
        outputs = {m["tool_call_id"]: m["content"] for m in row.messages if m["role"] == "tool"}
        made: dict[str, str] = {}
        for call in row.tool_calls:
            args = json.loads(call["function"]["arguments"])
            output = outputs[call["id"]]
            if call["function"]["name"] == "create_note":
                note = json.loads(output)
                # ids carry the server process's pid: made by the live server, not by us
                assert re.fullmatch(r"N-\d{3}-\d+", note["note_id"])
                assert note["note_id"].rsplit("-", 1)[1] != str(os.getpid())
                made[note["note_id"]] = args["text"]
                created += 1
            elif call["function"]["name"] == "get_note" and args["note_id"] in made:
                assert json.loads(output)["text"] == made[args["note_id"]]
    assert created >= 2


def test_the_configs_in_the_docs_validate(registry):
    """Every TOML example of docs/trajectories-with-an-llm.md is a valid config (fragments are
    checked appended to the first one), so the page stays in step with the options."""
    from astra_core.config import parse_config

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    page = Path(__file__).resolve().parent.parent / "docs" / "trajectories-with-an-llm.md"
    blocks = re.findall(r"```toml\n(.*?)```", page.read_text(), flags=re.S)
    full = [b for b in blocks if b.startswith("[run]")]
    fragments = [b for b in blocks if not b.startswith("[run]")]
    assert len(full) == 3 and fragments
    for text in [*full, *(full[0] + f for f in fragments)]:
        config = parse_config(tomllib.loads(text)).resolve(registry)
        sampler = config.stages["synth-trajectories"].sampler
        assert sampler.name == "llm-pipeline"
