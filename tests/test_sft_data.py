"""The sft-data plugin: trajectory checks, ShareGPT export, import of the authors' SFT format, and
the ``astra sft-data`` command.

The ASTRA-SFT-1k rows below are written by hand in the shape the reference notes document
(``reference-code-notes.md`` §2.3/§5: ``query_info``, ``mcp_info`` as a JSON string, ``graph``,
``chain_info``, ``trajectory`` as a JSON string of Qwen-Agent messages); the released file itself
cannot be downloaded here.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from astra_sft_data import check_trajectory, validate_trajectory
from astra_sft_data.astra_sft_import import SftImportError, import_astra_sft, row_to_trajectory
from astra_sft_data.sharegpt_export import OBSERVATION_SEPARATOR, to_sharegpt

import astra_core
from astra_core.cli import main as astra_main
from astra_core.errors import AstraError
from astra_core.records import Trajectory
from astra_core.store import RecordStore, read_manifest

CONFIG = """
[run]
name = "sft-data"
seed = 0

[synth-trajectories]
limit = 40

[synth-trajectories.source]
name = "bundled-catalog"

[synth-trajectories.sampler]
name = "offline-chain-walk"
max_chains_per_server = 4
"""


@pytest.fixture(scope="module")
def stage_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("sft-data")
    (tmp / "run.toml").write_text(CONFIG)
    report = astra_core.run(str(tmp / "run.toml"), tmp / "out", quiet=True)
    assert report.stages[0].status == "complete"
    return tmp / "out" / "synth-trajectories"


@pytest.fixture(scope="module")
def trajectories(stage_dir: Path) -> list[Trajectory]:
    records = list(RecordStore(stage_dir, Trajectory).iter_records())
    assert len(records) == 40
    return records


def first_with_calls(trajectories: list[Trajectory], calls: int = 2) -> Trajectory:
    return next(t for t in trajectories if len(t.tool_calls) >= calls)


def edited(traj: Trajectory, messages: list[dict[str, Any]]) -> Trajectory:
    return attrs.evolve(traj, messages=tuple(messages), id="")


def call_index(messages: list[dict[str, Any]]) -> int:
    return next(i for i, m in enumerate(messages) if m.get("tool_calls"))


# -- checks ----------------------------------------------------------------------------------


def test_every_synthesised_trajectory_passes_the_checks(trajectories: list[Trajectory]):
    for traj in trajectories:
        assert validate_trajectory(traj) == [], traj.id
    assert sum(len(t.tool_calls) for t in trajectories) >= 40


def kinds(traj: Trajectory) -> list[str]:
    return [p.kind for p in check_trajectory(traj)]


def test_a_call_of_a_tool_not_offered_is_named(trajectories: list[Trajectory]):
    traj = first_with_calls(trajectories)
    messages = copy.deepcopy(list(traj.messages))
    i = call_index(messages)
    messages[i]["tool_calls"][0]["function"]["name"] = "launch_rocket"
    problems = validate_trajectory(edited(traj, messages))
    assert len(problems) == 1
    assert problems[0].startswith(f"messages[{i}].tool_calls[0] (launch_rocket): ")
    assert "not offered" in problems[0]


@pytest.mark.parametrize(
    ("arguments", "kind", "says"),
    [
        ("{not json", "bad-arguments", "not valid JSON"),
        ('["a list"]', "bad-arguments", "decode to an object"),
        ({"already": "decoded"}, "bad-arguments", "must be a JSON string"),
        ("{}", "arguments-schema", "is a required property"),
    ],
)
def test_arguments_must_be_a_json_string_valid_under_the_schema(
    trajectories: list[Trajectory], arguments: Any, kind: str, says: str
):
    traj = first_with_calls(trajectories)
    messages = copy.deepcopy(list(traj.messages))
    i = call_index(messages)
    name = messages[i]["tool_calls"][0]["function"]["name"]
    required = next(t for t in traj.tools if t["function"]["name"] == name)["function"][
        "parameters"
    ]["required"]
    assert required, "the test needs a tool with a required parameter"
    messages[i]["tool_calls"][0]["function"]["arguments"] = arguments
    found = check_trajectory(edited(traj, messages))
    assert [p.kind for p in found] == [kind]
    assert says in found[0].text


def test_an_argument_of_the_wrong_type_names_the_argument(trajectories: list[Trajectory]):
    traj = first_with_calls(trajectories)
    messages = copy.deepcopy(list(traj.messages))
    i = call_index(messages)
    call = messages[i]["tool_calls"][0]["function"]
    args = json.loads(call["arguments"])
    key = next(k for k, v in args.items() if isinstance(v, str))
    args[key] = 12345
    call["arguments"] = json.dumps(args)
    found = check_trajectory(edited(traj, messages))
    assert [p.kind for p in found] == ["arguments-schema"]
    assert repr(key) in found[0].text and "not of type 'string'" in found[0].text


def test_every_call_is_answered_exactly_once(trajectories: list[Trajectory]):
    traj = first_with_calls(trajectories)
    messages = list(traj.messages)
    i = call_index(messages)
    assert messages[i + 1]["role"] == "tool"
    unanswered = messages[: i + 1] + messages[i + 2 :]
    assert "unanswered-call" in kinds(edited(traj, unanswered))
    twice = [*messages[: i + 2], messages[i + 1], *messages[i + 2 :]]
    problems = validate_trajectory(edited(traj, twice))
    assert any("a second time" in p for p in problems), problems
    stray = copy.deepcopy(messages)
    stray[i + 1]["tool_call_id"] = "call_nobody_made"
    assert kinds(edited(traj, stray)) == ["orphan-tool-message", "unanswered-call"]


def test_roles_and_the_final_answer(trajectories: list[Trajectory]):
    traj = first_with_calls(trajectories)
    messages = list(traj.messages)
    assert kinds(edited(traj, messages[:-1])) == ["no-final-answer"]
    user = messages[1]
    assert user["role"] == "user"
    assert kinds(edited(traj, [messages[0], user, *messages[1:]])) == ["role-order"]
    assert "role-order" in kinds(edited(traj, [*messages, messages[-1]]))
    assert kinds(edited(traj, [messages[0], {"role": "robot", "content": "x"}, *messages[1:]])) == [
        "bad-message"
    ]
    assert kinds(edited(traj, [])) == ["bad-message"]


def test_a_broken_tool_schema_is_reported(trajectories: list[Trajectory]):
    traj = first_with_calls(trajectories)
    tools = copy.deepcopy(list(traj.tools))
    tools[0]["function"]["parameters"] = {"type": "object", "properties": {"x": {"type": 7}}}
    problems = check_trajectory(attrs.evolve(traj, tools=tuple(tools), id=""))
    assert [p.kind for p in problems] == ["bad-tool-schema"]
    assert problems[0].where == "tools[0]"


# -- ShareGPT --------------------------------------------------------------------------------

ODD, EVEN = ("human", "observation"), ("gpt", "function_call")


def assert_llama_factory_shape(row: dict[str, Any]) -> None:
    """The rules LLaMA-Factory's ShareGPT converter applies before it accepts a row."""
    turns = row["conversations"]
    if turns and turns[0]["from"] == "system":
        turns = turns[1:]
    for index, turn in enumerate(turns):
        assert turn["from"] in (ODD, EVEN)[index % 2], (index, turn["from"])
        assert isinstance(turn["value"], str)
    assert len(turns) % 2 == 0
    tools = json.loads(row["tools"])
    offered = {t["function"]["name"] for t in tools}
    for turn in turns:
        if turn["from"] == "function_call":
            calls = json.loads(turn["value"])
            for call in calls if isinstance(calls, list) else [calls]:
                assert call["name"] in offered
                assert isinstance(call["arguments"], dict)  # it json.dumps them itself


def test_sharegpt_rows_keep_every_call_and_result(trajectories: list[Trajectory]):
    for traj in trajectories:
        row = to_sharegpt(traj)
        assert_llama_factory_shape(row)
        turns = row["conversations"]
        calls = [json.loads(t["value"]) for t in turns if t["from"] == "function_call"]
        assert [c["name"] for c in calls] == [c["function"]["name"] for c in traj.tool_calls]
        assert [c["arguments"] for c in calls] == [
            json.loads(c["function"]["arguments"]) for c in traj.tool_calls
        ]
        observations = [t["value"] for t in turns if t["from"] == "observation"]
        assert observations == [m["content"] for m in traj.messages if m["role"] == "tool"]
        assert turns[-1] == {"from": "gpt", "value": traj.messages[-1]["content"]}
        assert json.loads(row["tools"]) == list(traj.tools)
        assert row["metadata"]["chain"] == traj.metadata["chain"]


def test_sharegpt_export_loads_with_datasets(stage_dir: Path, tmp_path: Path):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "sharegpt.jsonl"
    assert astra_main(["sft-data", "export", "--format", "sharegpt", str(stage_dir), str(out)]) == 0
    data = datasets.load_dataset("json", data_files=str(out), split="train")
    assert data.num_rows == 40
    assert isinstance(data[0]["tools"], str)
    assert data[0]["conversations"][1]["from"] == "human"


# -- import of the authors' format -----------------------------------------------------------

MCP_INFO = {
    "base_info": {
        "group_info": {
            "server_title": "Weather Desk",
            "server_name": "weather-desk",
            "server_description": "City lookup, forecasts and weather alerts.",
            "domain": "Weather",
        },
        "tool_list": [
            {
                "name": "find_city",
                "description": "Find a city by its name and return the city id.",
                "parameters": {
                    "type": "object",
                    "properties": {"name": {"type": "string", "description": "City name."}},
                    "required": ["name"],
                },
            },
            {
                "name": "get_forecast",
                "description": "Get the daily forecast of a city by its city id.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "city_id": {"type": "string"},
                        "days": {"type": "integer", "minimum": 1, "maximum": 7},
                    },
                    "required": ["city_id"],
                },
            },
            {
                "name": "get_alerts",
                "description": "List the active weather alerts of a city by its city id.",
                "parameters": {
                    "type": "object",
                    "properties": {"city_id": {"type": "string"}},
                    "required": ["city_id"],
                },
            },
        ],
    },
    "call_info": {"mock_tool": True},
    "features": {},
}

QWEN_AGENT_TRAJECTORY = [
    {"role": "system", "content": "Planning and thinking about the task before function calling."},
    {"role": "user", "content": "What will the weather be in Lyon for the next 2 days?"},
    {
        "role": "assistant",
        "content": "I will look up the city first.",
        "reasoning_content": "The forecast needs a city id.",
    },
    {
        "role": "assistant",
        "content": [],
        "function_call": {"name": "find_city", "arguments": '{"name": "Lyon"}'},
    },
    {
        "role": "function",
        "name": "find_city",
        "content": '[{"name": "find_city", "results": {"city_id": "C-12"}}]',
    },
    {
        "role": "assistant",
        "content": "",
        "function_call": {"name": "get_forecast", "arguments": '{"city_id": "C-12", "days": 2}'},
    },
    {
        "role": "assistant",
        "content": [],
        "function_call": {"name": "get_alerts", "arguments": '{"city_id": "C-12"}'},
    },
    {"role": "function", "name": "get_alerts", "content": '{"alerts": []}'},
    {"role": "function", "name": "get_forecast", "content": '{"days": ["sun", "rain"]}'},
    {
        "role": "assistant",
        "content": [{"text": "Lyon: sun tomorrow, rain the day after, no alerts."}],
        "reasoning_content": "Both calls returned.",
    },
]


def astra_row(trajectory: list[dict[str, Any]], **query: Any) -> dict[str, Any]:
    return {
        "query_info": {
            "have_plan": True,
            "mode": "single_server",
            "target_tools": ["find_city", "get_forecast", "get_alerts"],
            "generated_question": "Weather in Lyon for 2 days?",
            "augmented_query_info": {"mode": "diverse", "augmented_question": "..."},
            "query_score_info": {
                "quality_scores": {"question_quality": 4, "scenario_realism": 5, "total": 9}
            },
            **query,
        },
        "mcp_info": json.dumps(MCP_INFO),
        "graph": {"graph_detect": [], "num_chains": 1},
        "chain_info": {"sub_chain": ["find_city", "get_forecast"]},
        "trajectory": json.dumps(trajectory),
    }


def test_a_qwen_agent_row_becomes_a_valid_openai_trajectory():
    imported = row_to_trajectory(astra_row(QWEN_AGENT_TRAJECTORY), "sft.jsonl:1")
    traj = imported.trajectory
    assert imported.failure is None
    assert validate_trajectory(traj) == []
    roles = [m["role"] for m in traj.messages]
    assert roles == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "tool",
        "assistant",
    ]
    plan = traj.messages[2]
    assert plan["content"] == "I will look up the city first."
    assert plan["reasoning_content"] == "The forecast needs a city id."
    assert [c["function"]["name"] for c in plan["tool_calls"]] == ["find_city"]
    parallel = traj.messages[4]["tool_calls"]
    assert [c["function"]["name"] for c in parallel] == ["get_forecast", "get_alerts"]
    # results came back in the other order; each is matched to its own call
    assert traj.messages[5]["tool_call_id"] == parallel[1]["id"]
    assert traj.messages[6]["tool_call_id"] == parallel[0]["id"]
    assert traj.messages[-1]["content"] == "Lyon: sun tomorrow, rain the day after, no alerts."
    assert [t["function"]["name"] for t in traj.tools] == [
        "find_city",
        "get_forecast",
        "get_alerts",
    ]
    task = traj.task
    assert task.query == "What will the weather be in Lyon for the next 2 days?"
    assert task.origin == "chain" and task.chain_id
    assert task.target_tools == ("find_city", "get_forecast", "get_alerts")
    assert task.augmentation == "diverse"
    assert task.scores == {"question_quality": 4.0, "scenario_realism": 5.0, "total": 9.0}
    assert traj.metadata["server"] == "Weather Desk"
    assert traj.metadata["tool_backend"] == "emulated"
    assert traj.metadata["chain"] == ["find_city", "get_forecast"]


def test_imported_parallel_calls_export_as_one_call_list_and_one_observation():
    traj = row_to_trajectory(astra_row(QWEN_AGENT_TRAJECTORY), "sft.jsonl:1").trajectory
    row = to_sharegpt(traj)
    assert_llama_factory_shape(row)
    turns = row["conversations"]
    parallel = json.loads(turns[4]["value"])
    assert [c["name"] for c in parallel] == ["get_forecast", "get_alerts"]
    assert parallel[0]["arguments"] == {"city_id": "C-12", "days": 2}
    assert turns[5] == {
        "from": "observation",
        "value": '{"alerts": []}' + OBSERVATION_SEPARATOR + '{"days": ["sun", "rain"]}',
    }
    thought = to_sharegpt(traj, thoughts="think")["conversations"][2]["value"]
    prefix = "<think>\nThe forecast needs a city id.\nI will look up the city first.\n</think>\n\n"
    assert thought.startswith(prefix)
    assert json.loads(thought[len(prefix) :]) == {
        "name": "find_city",
        "arguments": {"name": "Lyon"},
    }


def test_rows_with_openai_messages_and_tools_are_imported_too():
    # converted once, then given back in the dataset card's other shape: OpenAI messages, and
    # bare tools as a JSON string
    imported = row_to_trajectory(astra_row(QWEN_AGENT_TRAJECTORY), "a.jsonl:1").trajectory
    row = {
        "query_info": {"have_plan": False},
        "messages": list(imported.messages),
        "tools": json.dumps([t["function"] for t in imported.tools]),
    }
    traj = row_to_trajectory(row, "b.jsonl:1").trajectory
    assert validate_trajectory(traj) == []
    assert traj.messages == imported.messages
    assert traj.tools == imported.tools
    assert traj.task.origin == "server" and traj.task.chain_id is None


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"query_info": {}, "mcp_info": json.dumps(MCP_INFO)}, "'trajectory'"),
        ({"trajectory": json.dumps(QWEN_AGENT_TRAJECTORY)}, "'mcp_info' (or 'tools')"),
        (
            {"trajectory": QWEN_AGENT_TRAJECTORY, "mcp_info": {"base_info": {"group_info": {}}}},
            "'mcp_info.base_info.tool_list'",
        ),
        ({"trajectory": "[{not json", "mcp_info": MCP_INFO}, "field 'trajectory' is a string"),
    ],
)
def test_a_row_missing_a_field_is_an_error_naming_file_line_and_field(
    tmp_path: Path, row: dict[str, Any], field: str
):
    path = tmp_path / "sft.jsonl"
    good = json.dumps(astra_row(QWEN_AGENT_TRAJECTORY))
    path.write_text(good + "\n\n" + json.dumps(row) + "\n")
    with pytest.raises(SftImportError) as caught:
        import_astra_sft([path], tmp_path / "out")
    message = str(caught.value)
    assert message.startswith(f"{path}:3: ")
    assert field in message
    assert isinstance(caught.value, AstraError)


def test_a_result_with_no_call_is_an_error_naming_the_message(tmp_path: Path):
    broken = [*QWEN_AGENT_TRAJECTORY[:2], {"role": "function", "name": "get_alerts", "content": ""}]
    with pytest.raises(SftImportError, match=r"x\.jsonl:7: field 'trajectory': message 2: .*"):
        row_to_trajectory(astra_row(broken), "x.jsonl:7")


def write_rows(path: Path) -> None:
    bad_arguments = copy.deepcopy(QWEN_AGENT_TRAJECTORY)
    bad_arguments[5]["function_call"]["arguments"] = '{"city_id": "C-12", "days": "two"}'
    errored = [
        *copy.deepcopy(QWEN_AGENT_TRAJECTORY[:5]),
        {"role": "assistant", "content": "[ERROR: timeout]"},
    ]
    other_city = json.loads(json.dumps(QWEN_AGENT_TRAJECTORY).replace("Lyon", "Nantes"))
    rows = [
        astra_row(QWEN_AGENT_TRAJECTORY),
        astra_row(bad_arguments),
        astra_row(errored),
        astra_row(other_city),
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def test_import_writes_a_stage_like_dataset_and_resumes(tmp_path: Path, capsys):
    source = tmp_path / "ASTRA-SFT-1k.jsonl"
    write_rows(source)
    out = tmp_path / "astra-sft"
    code = astra_main(
        ["sft-data", "import", "--format", "astra-sft", str(source), "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "read 4 rows: 2 new trajectories" in printed
    records = list(RecordStore(out, Trajectory).iter_records())
    assert ["Lyon" in r.task.query for r in records] == [True, False]
    assert "Nantes" in records[1].task.query
    manifest = read_manifest(out)
    assert manifest is not None
    assert manifest["counts"] == {"read": 4, "written": 2, "existing": 0, "total": 2}
    assert manifest["dropped"] == {"invalid-arguments-schema": 1, "source-error": 1}
    drops = [json.loads(line) for line in (out / "dropped.jsonl").read_text().splitlines()]
    assert any(f"{source}:2" in d["detail"] and "'two'" in d["detail"] for d in drops)

    assert import_astra_sft([source], out).written == 0  # resumed: nothing new, nothing twice
    assert len(list(RecordStore(out, Trajectory).iter_records())) == 2
    kept = import_astra_sft([source], tmp_path / "kept", keep_invalid=True)
    assert kept.written == 3 and kept.dropped == {"source-error": 1}

    assert astra_main(["sft-data", "check", str(out)]) == 0
    assert "2 trajectories (2 ok)" in capsys.readouterr().out
    assert astra_main(["sft-data", "check", str(tmp_path / "kept")]) == 1
    printed = capsys.readouterr().out
    assert "problems in 1 of 3 trajectories: 1 arguments-schema" in printed
    assert "(get_forecast): arguments do not match the tool's schema at 'days'" in printed


def test_parquet_files_are_read_too(tmp_path: Path):
    """The hub serves datasets as Parquet: string fields stay strings, objects become structs."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    source = tmp_path / "train-00000-of-00001.parquet"
    rows = [astra_row(QWEN_AGENT_TRAJECTORY)]
    pq.write_table(pa.Table.from_pylist(rows), source)
    summary = import_astra_sft([source], tmp_path / "out")
    assert summary.written == 1 and summary.dropped == {}
    (traj,) = RecordStore(tmp_path / "out", Trajectory).iter_records()
    assert traj.metadata["source_row"] == f"{source} (row 1)"
    # the same record as from JSONL: the id depends on the content, not on the file or format
    assert traj.id == row_to_trajectory(rows[0], "elsewhere.jsonl:1").trajectory.id


def test_check_reports_problems_as_json_and_fails(
    trajectories: list[Trajectory], tmp_path: Path, capsys
):
    broken = first_with_calls(trajectories)
    messages = list(broken.messages)[:-1]
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "".join(t.to_json() + "\n" for t in [*trajectories[:3], edited(broken, messages)])
    )
    assert astra_main(["sft-data", "check", "--json", str(path)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["trajectories"] == 4 and report["invalid"] == 1
    assert report["problem_kinds"] == {"no-final-answer": 1}
    assert "does not end with an assistant answer" in report["problems"][0]["problems"][0]


def test_check_and_export_refuse_a_path_with_no_dataset(tmp_path: Path, capsys):
    assert astra_main(["sft-data", "check", str(tmp_path)]) == 1
    assert "no data-*.jsonl shards" in capsys.readouterr().err
    assert (
        astra_main(["sft-data", "export", str(tmp_path / "nope"), str(tmp_path / "o.jsonl")]) == 1
    )
    assert "no such stage directory or file" in capsys.readouterr().err


def test_export_skips_invalid_trajectories_and_says_so(
    trajectories: list[Trajectory], tmp_path: Path, capsys
):
    broken = first_with_calls(trajectories)
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "".join(
            t.to_json() + "\n"
            for t in [*trajectories[:3], edited(broken, list(broken.messages)[:-1])]
        )
    )
    out = tmp_path / "out.jsonl"
    assert astra_main(["sft-data", "export", str(path), str(out)]) == 0
    assert len(out.read_text().splitlines()) == 3
    assert "skipped 1 invalid" in capsys.readouterr().out


# -- export in the authors' format ----------------------------------------------------------

ASTRA = str(Path(sys.executable).with_name("astra"))

# QWEN_AGENT_TRAJECTORY in the exact shape the release writes (a call's content is [], text
# is a string), so that an import and an export give it back unchanged
CANONICAL = json.loads(json.dumps(QWEN_AGENT_TRAJECTORY))
CANONICAL[5]["content"] = []
CANONICAL[-1]["content"] = "Lyon: sun tomorrow, rain the day after, no alerts."


def released_view(row: dict[str, Any]) -> dict[str, Any]:
    """What an import reads from a row (and an export writes back), fields decoded."""
    mcp = json.loads(row["mcp_info"]) if isinstance(row["mcp_info"], str) else row["mcp_info"]
    query = row["query_info"]
    return {
        "trajectory": json.loads(row["trajectory"]),
        "tool_list": mcp["base_info"]["tool_list"],
        "group_info": mcp["base_info"]["group_info"],
        "mock_tool": bool(mcp["call_info"].get("mock_tool")),
        "sub_chain": row["chain_info"]["sub_chain"],
        "target_tools": query["target_tools"],
        "have_plan": query["have_plan"],
        "augmentation": query["augmented_query_info"].get("mode"),
        "scores": query["query_score_info"]["quality_scores"],
    }


def test_import_then_export_gives_the_released_rows_back(tmp_path: Path):
    rows = [astra_row(CANONICAL), astra_row(QWEN_AGENT_TRAJECTORY, have_plan=False)]
    source = tmp_path / "ASTRA-SFT-1k.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stage = tmp_path / "imported"
    assert import_astra_sft([source], stage, keep_invalid=True).written == 2
    out = tmp_path / "again.jsonl"
    done = subprocess.run(
        [ASTRA, "sft-data", "export", str(stage), "--format", "astra-sft", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "exported 2 trajectories as astra-sft" in done.stdout
    back = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(isinstance(r["trajectory"], str) and isinstance(r["mcp_info"], str) for r in back)
    assert released_view(back[0]) == released_view(rows[0])
    # a row in another accepted shape comes back in the release's own (content as text or [])
    second = released_view(rows[1])
    second |= {
        "trajectory": CANONICAL,
        "have_plan": False,
        "sub_chain": ["find_city", "get_forecast"],
    }
    assert released_view(back[1]) == second
    assert (
        json.loads(back[0]["mcp_info"])["base_info"]["group_info"]
        == MCP_INFO["base_info"]["group_info"]
    )


def test_export_then_import_gives_the_same_trajectories(
    stage_dir: Path, trajectories: list[Trajectory], tmp_path: Path
):
    out = tmp_path / "sft.jsonl"
    assert (
        astra_main(
            ["sft-data", "export", "--format", "astra-sft", str(stage_dir), "--out", str(out)]
        )
        == 0
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(trajectories)
    # the conversation travels in the release's fields; the extra field only adds what they lack
    extra = [json.loads(r["astra"]) for r in rows]
    assert all("messages" not in e and "tools" not in e for e in extra)
    imported = tmp_path / "imported"
    assert astra_main(["sft-data", "import", str(out), "--out", str(imported)]) == 0
    assert list(RecordStore(imported, Trajectory).iter_records()) == trajectories
    # without the extra field: the same conversations and tools, calls renumbered
    bare = tmp_path / "bare.jsonl"
    assert (
        astra_main(
            ["sft-data", "export", "--format", "astra-sft", "--bare", str(stage_dir), str(bare)]
        )
        == 0
    )
    assert "astra" not in json.loads(bare.read_text().splitlines()[0])
    summary = import_astra_sft([bare], tmp_path / "bare-imported")
    assert summary.written == len(trajectories)
    again = list(RecordStore(tmp_path / "bare-imported", Trajectory).iter_records())
    for original, back in zip(trajectories, again, strict=True):
        assert back.tools == original.tools
        assert strip_ids(back.messages) == strip_ids(original.messages)
        assert back.task.query == original.task.query


def strip_ids(messages: Any) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        m = {k: v for k, v in m.items() if k not in ("tool_call_id", "name")}
        if m.get("tool_calls"):
            m["tool_calls"] = [{k: v for k, v in c.items() if k != "id"} for c in m["tool_calls"]]
        out.append(m)
    return out


def test_details_the_release_drops_travel_in_the_extra_field(
    trajectories: list[Trajectory], tmp_path: Path
):
    from astra_sft_data.astra_sft_export import trajectory_to_row

    traj = first_with_calls(trajectories)
    messages = copy.deepcopy(list(traj.messages))
    i = call_index(messages)
    messages[i + 1]["name"] = messages[i]["tool_calls"][0]["function"]["name"]  # a tool's name
    odd = edited(traj, messages)
    row = trajectory_to_row(odd)
    assert "messages" in json.loads(row["astra"])
    assert row_to_trajectory(json.loads(json.dumps(row)), "x.jsonl:1").trajectory == odd

    # a row edited after its export is not passed off as the record its extra field holds
    tampered = trajectory_to_row(traj)
    conversation = json.loads(tampered["trajectory"])
    conversation[-1]["content"] = "Something else."
    tampered["trajectory"] = json.dumps(conversation)
    with pytest.raises(SftImportError, match=r"x\.jsonl:2: the row's trajectory disagree"):
        row_to_trajectory(tampered, "x.jsonl:2")
