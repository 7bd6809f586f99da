"""The steps of the ``llm-pipeline`` sampler and the ``llm-emulator`` executor, one by one.

An LLM cannot run here. Unless a test says otherwise, its LLM answers are *recorded, real-shaped*
``chat.completion`` bodies (as an OpenAI-compatible server sends them: reasoning in ``<think>``
tags, JSON in code fences, text around it) seeded into the ``openai-compatible`` backend's disk
cache with ``astra_llm.response_cache.seed_cache`` and replayed with ``cache_mode="replay"``: a
request the recording does not cover fails as a real failed call would (``LLMCacheMiss``).
Tests that say so use the package's real loopback HTTP server (``astra_llm.loopback_server``)
answering scripted responses instead.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import attrs
import pytest
from astra_llm.errors import LLMCallFailed
from astra_llm.loopback_server import LoopbackServer, ReceivedRequest, Reply, chat_completion
from astra_llm.response_cache import seed_cache
from astra_tool_catalog.bundled_source import catalog_server
from astra_tool_catalog.schema_flow import SchemaFlowGraphBuilder
from astra_tool_catalog.servers import SERVERS
from astra_trajectories import prompts
from astra_trajectories.chain_proposals import ChainProposer, proposal_edges, union_edges
from astra_trajectories.llm_answers import MalformedAnswer, parse_answer
from astra_trajectories.llm_chain_verification import (
    ChainVerdict,
    ChainVerifier,
    unsatisfied_arguments,
)
from astra_trajectories.llm_options import DEFAULT_PERSONAS
from astra_trajectories.rollout import AgentRollout
from astra_trajectories.step_outcomes import Rejected, StepFailed
from astra_trajectories.task_augmentation import TaskAugmenter
from astra_trajectories.task_generation import TaskWriter
from astra_trajectories.task_scoring import TaskScorer
from astra_trajectories.tool_emulator import EmulatorCallFailed
from astra_trajectories.trajectory_judge import (
    ConversationView,
    TrajectoryJudge,
    offered_tools,
)

from astra_core.context import StageContext
from astra_core.errors import ConfigError
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.records import Task, ToolCall, ToolCallResult, ToolChain, ToolServer
from astra_core.registry import ComponentBuilder
from astra_core.store import RecordStore

MODEL = "recorded"


@pytest.fixture(scope="module")
def registry() -> Any:
    return load_plugins().registry


@pytest.fixture(scope="module")
def weather() -> ToolServer:
    return catalog_server(SERVERS["weather"], state_seed=0, scenarios=3)


def completion(content: str) -> dict[str, Any]:
    """A ``chat.completion`` body as an OpenAI-compatible server returns it."""
    return chat_completion(content, model=MODEL, prompt_tokens=812, completion_tokens=143)


def as_json(value: Any, *, think: str = "Let me work through this.") -> str:
    """How reasoning models tend to answer: thoughts, then the JSON in a fence, then a remark."""
    return f"<think>{think}</think>\n```json\n{json.dumps(value)}\n```\nHope this helps."


class Recorded:
    """A replay-only backend over a seeded cache (``seed_cache`` + ``cache_mode="replay"``)."""

    def __init__(self, registry: Any, tmp_path: Path, seed: int = 0) -> None:
        self.cache = tmp_path / "llm-cache"
        self.builder = ComponentBuilder(registry, seed=seed, workdir=tmp_path)
        self.llm = self.builder.build(
            "llm_backend",
            ComponentSpec(
                "openai-compatible",
                {"model": MODEL, "cache_dir": str(self.cache), "cache_mode": "replay"},
            ),
        )

    def record(self, *pairs: tuple[dict[str, Any], str]) -> None:
        seed_cache(self.cache, [(req, completion(text)) for req, text in pairs], model=MODEL)


@pytest.fixture
def recorded(registry: Any, tmp_path: Path) -> Recorded:
    return Recorded(registry, tmp_path)


def context(registry: Any, tmp_path: Path) -> StageContext:
    from astra_core.records import Trajectory

    store = RecordStore(tmp_path / "synth-trajectories", Trajectory).open()
    return StageContext(
        "synth-trajectories",
        run_dir=tmp_path,
        builder=ComponentBuilder(registry, seed=0, workdir=tmp_path),
        store=store,
        quiet=True,
    )


# -- reading answers -----------------------------------------------------------------------------


def test_answers_are_read_leniently_and_checked_strictly():
    schema = prompts.CHAIN_PROPOSAL_SCHEMA
    chains = [{"dependent": "yes", "chain": ["a", "b"], "task": "t"}]
    assert parse_answer(as_json(chains), schema, "chain-proposal") == chains
    # text with brackets before the JSON, no fence: the first array that decodes is taken
    assert parse_answer(f"Sure [see below]: {json.dumps(chains)}", schema, "x") == chains
    with pytest.raises(MalformedAnswer, match=r"chain-proposal: \$\[0\]\.dependent"):
        parse_answer(json.dumps([{"dependent": "maybe", "chain": ["a"]}]), schema, "chain-proposal")
    with pytest.raises(MalformedAnswer, match="no JSON array in the answer"):
        parse_answer("<think>hmm</think>I cannot help with that.", schema, "chain-proposal")
    with pytest.raises(MalformedAnswer, match="the answer is empty"):
        parse_answer("<think>only thoughts</think>", schema, "chain-proposal")


# -- step 1: proposals -> edges --------------------------------------------------------------------


def test_chain_proposals_become_weighted_edges_unioned_with_schema_flow(recorded, weather):
    messages = prompts.chain_proposal_messages(weather, 5)
    assert all(name in messages[1]["content"] for name in weather.tool_names)
    answer = [
        {
            "dependent": "yes",
            "chain": ["search_locations", "get_forecast", "get_sun_times"],
            "task": "Plan a sunrise hike in Lisbon.",
        },
        {"dependent": "yes", "chain": ["search_locations", "get_forecast"], "task": "Forecast."},
        {"dependent": "yes", "chain": ["get_alert_details", "get_weather_now", "get_forecast"]},
        {"dependent": "no", "chain": ["get_sun_times", "get_alert_details"], "task": "x"},
        {"dependent": "not sure", "chain": ["get_air_quality", "get_alert_details"]},
    ]
    recorded.record(({"messages": messages}, as_json(answer)))
    found = ChainProposer(recorded.llm, max_length=5).propose(weather)
    assert not found.failures and found.discarded == 2 and len(found.proposals) == 3
    edges = {(e.source, e.target): e.weight for e in proposal_edges(weather, found.proposals)}
    # counted per consecutive pair; the unknown tool breaks its chain: no edge jumps over it
    assert edges == {
        ("search_locations", "get_forecast"): 2.0,
        ("get_forecast", "get_sun_times"): 1.0,
    }
    graph = SchemaFlowGraphBuilder().build(weather)
    merged = union_edges(graph, proposal_edges(weather, found.proposals))
    by_pair = {(e.source, e.target): e for e in merged.edges}
    flow = {(e.source, e.target): e for e in graph.edges}
    assert set(flow) <= set(by_pair)
    pair = ("search_locations", "get_forecast")
    assert by_pair[pair].weight == flow[pair].weight + 2.0
    assert "proposed by the LLM" in by_pair[pair].reason and "->" in by_pair[pair].reason


def test_a_malformed_proposal_is_dropped_with_its_reason_and_the_graph_kept(
    registry, recorded, weather, tmp_path
):
    from astra_trajectories.llm_options import LLMPipelineOptions
    from astra_trajectories.llm_sampler import LLMPipelineSampler

    messages = prompts.chain_proposal_messages(weather, 5)
    recorded.record(({"messages": messages}, 'Here: {"chains": "search_locations then forecast"}'))
    options = LLMPipelineOptions(
        llm=ComponentSpec(
            "openai-compatible",
            {"model": MODEL, "cache_dir": str(recorded.cache), "cache_mode": "replay"},
        ),
        executor=ComponentSpec("python-catalog"),
    )
    sampler = LLMPipelineSampler(options, recorded.builder)
    ctx = context(registry, tmp_path)
    graph = SchemaFlowGraphBuilder().build(weather)
    assert sampler.graph(graph, ctx).edges == graph.edges
    assert ctx.store.dropped_counts() == {"chain-proposal-malformed": 1}
    drop = json.loads((ctx.out_dir / "dropped.jsonl").read_text().splitlines()[0])
    assert "no JSON array" in drop["detail"] and drop["id"] == weather.id


# -- step 3: chain verification --------------------------------------------------------------------


def _tool(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": sorted(properties)}
    return {
        "type": "function",
        "function": {"name": name, "description": name, "parameters": schema},
    }


def test_argument_dependencies_come_from_the_schemas(weather):
    # get_forecast's location_id is "returned by search_locations": it must run first
    assert unsatisfied_arguments(weather, ("search_locations", "get_forecast")) == []
    missing = unsatisfied_arguments(weather, ("get_forecast", "search_locations"))
    assert missing == ["get_forecast.location_id (from search_locations)"]
    # get_alert_details' alert_id names no source tool: a user can state it; its output holds
    # the alert's location_id, which feeds get_forecast (schema-flow match)
    assert unsatisfied_arguments(weather, ("get_alert_details", "get_forecast")) == []
    assert unsatisfied_arguments(weather, ("get_air_quality", "get_forecast")) == [
        "get_air_quality.location_id (from search_locations)"
    ]
    # an identifier another tool returns must come from it, unless a user is known to state it
    notes = ToolServer(
        title="Notes",
        tools=(
            _tool("create_note", {"text": {"type": "string"}}),
            _tool("get_note", {"note_id": {"type": "string", "description": "The note's id."}}),
            _tool("list_notes", {}),
        ),
        endpoint={
            "returns": {
                "create_note": {"type": "object", "properties": {"note_id": {"type": "string"}}}
            }
        },
    )
    assert unsatisfied_arguments(notes, ("create_note", "get_note")) == []
    # create_note documents it returns note_id; list_notes says so by its name
    assert unsatisfied_arguments(notes, ("get_note", "create_note")) == [
        "get_note.note_id (from create_note, list_notes)"
    ]
    known = attrs.evolve(notes, endpoint={**notes.endpoint, "scenarios": [{"note_id": "N-1"}]})
    assert unsatisfied_arguments(known, ("get_note", "create_note")) == []
    verifier = ChainVerifier(None, vote_samples=0, back_translation=False)  # type: ignore[arg-type]
    chain = ToolChain(server_id=weather.id, tools=("get_sun_times", "search_locations"))
    rejected = verifier.verify(weather, chain)
    assert isinstance(rejected, Rejected) and rejected.reason == "chain-unsatisfiable-argument"
    unknown = verifier.verify(weather, ToolChain(server_id=weather.id, tools=("search_x", "y")))
    assert isinstance(unknown, Rejected) and unknown.reason == "chain-unknown-tool"


def _vote(valid: bool) -> str:
    return as_json(
        {"reason": "r", "is_valid": valid, "user_query": "Forecast for Lisbon?", "task_plan": "p"}
    )


def test_vote_majority_and_back_translation(recorded, weather):
    good = ToolChain(server_id=weather.id, tools=("search_locations", "get_forecast"))
    bad = ToolChain(server_id=weather.id, tools=("search_locations", "get_air_quality"))
    odd = ToolChain(server_id=weather.id, tools=("search_locations", "get_sun_times"))
    query = "What will the weather be like in Lisbon over the next three days?"
    pairs = []
    for chain, votes in ((good, [True, False, True]), (bad, [False, True, False])):
        for i, v in enumerate(votes):
            msgs = prompts.chain_vote_messages(weather, chain.tools)
            pairs.append(({"messages": msgs, "sampling": {"seed": i}}, _vote(v)))
    # one unparseable vote is left out of the count: 1 yes / 0 no passes
    msgs = prompts.chain_vote_messages(weather, odd.tools)
    pairs += [
        ({"messages": msgs, "sampling": {"seed": 0}}, "I think so."),
        ({"messages": msgs, "sampling": {"seed": 1}}, _vote(True)),
        ({"messages": msgs, "sampling": {"seed": 2}}, "Let me think... [unsure]"),
    ]
    for chain, again in ((good, good.tools), (odd, ("search_locations", "get_forecast"))):
        pairs.append(
            (
                {"messages": prompts.query_from_chain_messages(weather, chain.tools)},
                as_json({"valid": True, "query": query + chain.tools[-1]}),
            )
        )
        pairs.append(
            (
                {"messages": prompts.chain_from_query_messages(weather, query + chain.tools[-1])},
                as_json({"plan": "find it, then ask", "chain": list(again)}),
            )
        )
    recorded.record(*pairs)
    verifier = ChainVerifier(recorded.llm, vote_samples=3, back_translation=True)
    passed = verifier.verify(weather, good)
    assert isinstance(passed, ChainVerdict)
    assert passed.votes == (2, 1) and passed.user_query == "Forecast for Lisbon?"
    assert passed.back_translated_query == query + "get_forecast"
    voted_down = verifier.verify(weather, bad)
    assert voted_down == Rejected("chain-vote-rejected", bad.id, "1 yes / 2 no")
    mismatch = verifier.verify(weather, odd)
    assert isinstance(mismatch, Rejected) and mismatch.reason == "chain-back-translation-mismatch"
    assert "came back as search_locations -> get_forecast" in mismatch.detail
    # an unrecorded chain: every vote call fails -> the step fails with the call's reason
    other = ToolChain(server_id=weather.id, tools=("search_locations", "get_weather_alerts"))
    with pytest.raises(StepFailed) as failed:
        verifier.verify(weather, other)
    assert failed.value.reason == "chain-vote-llm-failed"


# -- step 4: tasks -------------------------------------------------------------------------------


def test_chain_and_server_tasks(recorded, weather):
    chain = ToolChain(server_id=weather.id, tools=("search_locations", "get_forecast"))
    chain_q = "I'm flying to Lisbon on Friday. What's the forecast there for the next 3 days?"
    recorded.record(
        (
            {"messages": prompts.chain_tasks_messages(weather, chain.tools, 1)},
            as_json({"tasks": [{"query": chain_q}, {"query": "extra beyond the count"}]}),
        ),
        (
            {"messages": prompts.server_tasks_messages(weather, 2, 2)},
            as_json(
                {
                    "tasks": [
                        {
                            "query": "Any weather alerts for Lima right now, and what do they say?",
                            "target_tools": ["search_locations", "get_weather_alerts"],
                        },
                        {
                            "query": "Is it sunny in Seoul?",
                            "target_tools": ["search_locations", "get_sunshine"],
                        },
                    ]
                }
            ),
        ),
        ({"messages": prompts.server_tasks_messages(weather, 3, 2)}, as_json({"tasks": []})),
    )
    writer = TaskWriter(recorded.llm, tasks_per_chain=1, server_tasks=2)
    (task,) = writer.for_chain(weather, chain)
    assert isinstance(task, Task)
    assert (task.query, task.origin, task.chain_id, task.target_tools) == (
        chain_q,
        "chain",
        chain.id,
        chain.tools,
    )
    assert task.metadata["script"] == "latin"
    ok, unknown = writer.for_server(weather, 2)
    assert isinstance(ok, Task) and ok.origin == "server" and ok.chain_id is None
    assert isinstance(unknown, Rejected) and unknown.reason == "task-unknown-tool"
    assert "get_sunshine" in unknown.detail
    with pytest.raises(StepFailed) as failed:  # {"tasks": []} violates minItems
        writer.for_server(weather, 3)
    assert failed.value.reason == "task-generation-malformed"
    assert "$.tasks" in failed.value.detail


def test_augmentations_keep_the_language(recorded, weather):
    source = Task(
        query="请帮我查一下里斯本未来三天的天气预报。",
        server_id=weather.id,
        target_tools=("search_locations", "get_forecast"),
    )
    persona = random.Random("persona").choice(DEFAULT_PERSONAS)
    tools = source.target_tools
    recorded.record(
        (
            {"messages": prompts.augmentation_messages("paraphrase", source.query, 2, tools=tools)},
            as_json(
                {
                    "variations": [
                        "我想知道里斯本接下来三天天气怎么样？",
                        "What's the weather in Lisbon for the next three days?",
                    ]
                }
            ),
        ),
        (
            {
                "messages": prompts.augmentation_messages(
                    "persona", source.query, 2, tools=tools, persona=persona
                )
            },
            as_json({"variations": ["我下周去里斯本出差，麻烦告诉我三天的天气预报，谢谢。"]}),
        ),
    )
    augmenter = TaskAugmenter(
        recorded.llm,
        modes=("paraphrase", "complexity", "persona"),
        variations=2,
        personas=DEFAULT_PERSONAS,
    )
    out = augmenter.augment(source, random.Random("persona"))
    kept = [t for t in out if isinstance(t, Task)]
    reasons = sorted(r.reason for r in out if isinstance(r, Rejected))
    # complexity was not recorded: its call fails and only that mode is lost
    assert reasons == ["augmentation-language-changed", "task-augmentation-llm-failed"]
    assert [t.augmentation for t in kept] == ["paraphrase", "persona"]
    assert all(t.metadata["source_task"] == source.id for t in kept)
    assert kept[1].metadata["persona"] == persona
    assert {t.target_tools for t in kept} == {source.target_tools}


def _rating(qq: int, sr: int, tn: int) -> str:
    return as_json(
        {
            "question_quality": {"reason": "clear", "score": qq},
            "scenario_realism": {"reason": "plausible", "score": sr},
            "tool_necessity": {"reason": "needs live data", "score": tn},
            "difficulty": {"reason": "two steps", "score": 2},
            "uniqueness": {"reason": "only these fit", "score": 4},
        }
    )


def test_task_scores_and_thresholds(recorded, weather):
    good = Task(
        query="Forecast for Lisbon, 3 days?",
        server_id=weather.id,
        target_tools=("search_locations", "get_forecast"),
    )
    vague = Task(query="weather?", server_id=weather.id, target_tools=("get_forecast",))
    recorded.record(
        (
            {"messages": prompts.task_score_messages(weather, good.query, good.target_tools)},
            _rating(4, 5, 5),
        ),
        (
            {"messages": prompts.task_score_messages(weather, vague.query, vague.target_tools)},
            _rating(2, 3, 4),
        ),
    )
    scorer = TaskScorer(recorded.llm, thresholds={"question_quality": 3, "tool_necessity": 3})
    scored = scorer.score(weather, good)
    assert isinstance(scored, Task) and scored.id == good.id
    assert scored.scores == {
        "question_quality": 4.0,
        "scenario_realism": 5.0,
        "tool_necessity": 5.0,
        "difficulty": 2.0,
        "uniqueness": 4.0,
    }
    assert scorer.score(weather, vague) == Rejected(
        "task-below-threshold", vague.id, "question_quality 2 < 3"
    )


# -- step 5: rollout -----------------------------------------------------------------------------


def _tool_call(call_id: str, name: str, arguments: dict[str, Any] | str) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def test_rollout_checks_every_call_and_answers_each_with_a_tool_message(
    registry, weather, tmp_path
):
    """Through the real loopback HTTP server: a scripted agent (answers chosen from what the
    request holds) calls an unknown tool, then with arguments that fail the schema, then right
    (reading the location id out of the real tool output), then answers."""

    def agent(request: ReceivedRequest) -> Reply:
        messages = request.body["messages"]
        assert request.body["tools"] == list(weather.tools)  # every turn offers the tools
        tool_msgs = [m for m in messages if m["role"] == "tool"]
        if not tool_msgs:
            calls = [
                _tool_call("call_0", "get_weather_now", {"city": "Lisbon"}),
                _tool_call("call_1", "search_locations", {"query": "Lisbon"}),
            ]
        elif len(tool_msgs) == 2:
            found = json.loads(tool_msgs[1]["content"])["locations"][0]["location_id"]
            calls = [_tool_call("call_0", "get_forecast", {"location_id": found, "days": 0})]
        elif len(tool_msgs) == 3:
            found = json.loads(tool_msgs[1]["content"])["locations"][0]["location_id"]
            calls = [_tool_call("call_0", "get_forecast", {"location_id": found, "days": 3})]
        else:
            return Reply(completion("Lisbon: mild and sunny for the next three days."))
        return Reply(chat_completion("Let me check.", tool_calls=calls, model=MODEL))

    builder = ComponentBuilder(registry, seed=0, workdir=tmp_path)
    with LoopbackServer(agent) as server:
        llm = builder.build(
            "llm_backend",
            ComponentSpec("openai-compatible", {"model": MODEL, "base_url": server.base_url}),
        )
        executor = builder.build("tool_executor", "python-catalog")
        rollout = AgentRollout(llm, executor, max_turns=6, system_prompt="Tools of {title}.")
        task = Task(query="Forecast for Lisbon, 3 days?", server_id=weather.id)
        result = rollout.run(weather, task, session_key="t1")
    assert result.failure is None and result.turns == 4
    assert [r.error for r in result.results] == [True, False, True, False]
    assert "unknown tool 'get_weather_now'" in result.results[0].output
    assert "days: 0 is less than the minimum of 1" in result.results[2].output
    assert len(result.invalid_calls) == 2
    # ids repeated by the server ("call_0" every turn) are made unique; one tool message each
    calls = [c for m in result.messages for c in m.get("tool_calls") or ()]
    answered = [m["tool_call_id"] for m in result.messages if m["role"] == "tool"]
    assert len({c["id"] for c in calls}) == 4 and answered == [c["id"] for c in calls]
    assert result.messages[0]["content"] == "Tools of Weather Service."
    assert result.messages[-1] == {
        "role": "assistant",
        "content": "Lisbon: mild and sunny for the next three days.",
    }
    # the valid calls really ran: same outputs as a fresh session of the executor
    fresh = builder.build("tool_executor", "python-catalog").open_session("check")
    search = fresh.call(weather, ToolCall("search_locations", {"query": "Lisbon"}))
    assert result.results[1].output == search.output


# -- step 6: the judge ---------------------------------------------------------------------------

CONVERSATION = [
    {"role": "system", "content": "Tools of Weather Service."},
    {"role": "user", "content": "What's the forecast for Lisbon for the next 3 days?"},
    {
        "role": "assistant",
        "content": "First I find Lisbon.",
        "tool_calls": [_tool_call("c1", "search_locations", {"query": "Lisbon"})],
    },
    {
        "role": "tool",
        "tool_call_id": "c1",
        "content": '{"locations": [{"location_id": "LOC-101", "name": "Lisbon"}]}',
    },
    {
        "role": "assistant",
        "content": "Now the forecast.",
        "tool_calls": [
            _tool_call("c2", "get_forecast", {"location_id": "LOC-101", "days": 3}),
            _tool_call("c3", "get_air_quality", {"location_id": "LOC-101"}),
        ],
    },
    {"role": "tool", "tool_call_id": "c2", "content": '{"days": [{"high_c": 24}]}'},
    {"role": "tool", "tool_call_id": "c3", "content": '{"error": "timeout"}'},
    {"role": "assistant", "content": "Next 3 days in Lisbon: highs around 24 °C."},
]
RESULTS = [
    ToolCallResult("search_locations", {"query": "Lisbon"}, "{}"),
    ToolCallResult("get_forecast", {"location_id": "LOC-101", "days": 3}, "{}"),
    ToolCallResult("get_air_quality", {"location_id": "LOC-101"}, '{"error": "timeout"}', True),
]


def _judge_requests(weather: ToolServer, conversation: list[dict[str, Any]]) -> dict[str, Any]:
    """The requests the judge sends for ``conversation``, built from the same prompt builders."""
    view = ConversationView(conversation, 2000)
    offered = offered_tools(weather.tools)
    return {
        "query": prompts.query_judge_messages(offered, view.render(view.turns[0].index)),
        "round": prompts.round_judge_messages(offered, view.render(view.rounds[1].index)),
        "concise": prompts.conciseness_judge_messages(offered, view.render(), view.calls),
        "final": prompts.final_answer_judge_messages(offered, view.render()),
    }


def test_the_seven_scores_and_their_mean(recorded, weather):
    req = _judge_requests(weather, CONVERSATION)
    assert "[tool response to call 3: get_air_quality]" in req["concise"][1]["content"]
    assert "Tools of Weather Service" not in req["final"][1]["content"]  # no system message
    recorded.record(
        (
            {"messages": req["query"]},
            as_json({"reason": "ok", "understanding": 1, "planning": 0.5}),
        ),
        ({"messages": req["round"]}, as_json({"reason": "ok", "understanding": 1, "planning": 1})),
        (
            {"messages": req["concise"]},
            as_json(
                {
                    "calls": [
                        {"index": 1, "reason": "needed", "score": 1},
                        {"index": 2, "reason": "needed", "score": 1},
                        {"index": 3, "reason": "not asked for", "score": 0},
                    ]
                }
            ),
        ),
        ({"messages": req["final"]}, as_json({"reason": "ok", "correlation": 1, "summary": 0.5})),
    )
    verdict = TrajectoryJudge(recorded.llm, threshold=0.8).judge(
        CONVERSATION, weather.tools, RESULTS
    )
    expected = {
        "query_understanding": 1.0,
        "query_planning": 0.5,
        "tool_context_understanding": 1.0,
        "tool_context_planning": 1.0,
        "tool_call_status": 2 / 3,  # the timed-out call scores 0 (the paper's formula)
        "tool_conciseness": 2 / 3,
        "final_answer": 0.75,
    }
    assert {k: pytest.approx(v) for k, v in expected.items()} == {
        k: verdict.scores[k] for k in expected
    }
    assert verdict.overall == pytest.approx(sum(expected.values()) / 7, abs=1e-6)
    assert verdict.not_applicable == () and verdict.passed is (verdict.overall >= 0.8)
    assert verdict.passed is False


def test_answer_in_another_language_gets_no_correlation(recorded, weather):
    answer = {"role": "assistant", "content": "里斯本未来三天最高24度。"}
    conversation = [*CONVERSATION[:-1], answer]
    req = _judge_requests(weather, conversation)
    recorded.record(
        ({"messages": req["query"]}, as_json({"understanding": 1, "planning": 1})),
        ({"messages": req["round"]}, as_json({"understanding": 1, "planning": 1})),
        (
            {"messages": req["concise"]},
            as_json({"calls": [{"index": i, "score": 1} for i in (1, 2, 3)]}),
        ),
        ({"messages": req["final"]}, as_json({"correlation": 1, "summary": 1})),
    )
    verdict = TrajectoryJudge(recorded.llm, threshold=0.5).judge(
        conversation, weather.tools, RESULTS
    )
    assert verdict.scores["final_answer"] == 0.5
    assert "rule: the answer is in cjk script" in verdict.reasons["final_answer"]


def test_judge_failures_fail_the_record_never_pass_it(registry, recorded, weather, tmp_path):
    # a conciseness answer that skips a call is malformed, not a free pass
    req = _judge_requests(weather, CONVERSATION)
    recorded.record(
        ({"messages": req["query"]}, as_json({"understanding": 1, "planning": 1})),
        ({"messages": req["round"]}, as_json({"understanding": 1, "planning": 1})),
        ({"messages": req["concise"]}, as_json({"calls": [{"index": 1, "score": 1}]})),
    )
    judge = TrajectoryJudge(recorded.llm, threshold=0.5)
    with pytest.raises(StepFailed) as malformed:
        judge.judge(CONVERSATION, weather.tools, RESULTS)
    assert malformed.value.reason == "judge-malformed"
    assert "expected each of 1..3 once" in malformed.value.detail
    # a call that fails (here: not in the recording) fails the judge
    shorter = [*CONVERSATION[:4], {"role": "assistant", "content": "Found Lisbon."}]
    with pytest.raises(StepFailed) as failed:
        judge.judge(shorter, weather.tools, RESULTS[:1])
    assert failed.value.reason == "judge-llm-failed"


# -- the emulator --------------------------------------------------------------------------------


def _emulator(registry: Any, tmp_path: Path, seed: int, **options: Any) -> Any:
    builder = ComponentBuilder(registry, seed=seed, workdir=tmp_path)
    llm = {
        "name": "openai-compatible",
        "model": MODEL,
        "cache_dir": str(tmp_path / "llm-cache"),
        "cache_mode": "replay",
    }
    return builder.build("tool_executor", ComponentSpec("llm-emulator", {"llm": llm, **options}))


def test_emulator_injects_failures_at_the_configured_rate(registry, weather, tmp_path):
    args = {"location_id": "LOC-101"}
    messages = prompts.emulator_messages(weather, weather.tool("get_air_quality"), args, [], None)
    output = {"location_id": "LOC-101", "aqi": 42, "category": "good"}
    seed_cache(
        tmp_path / "llm-cache",
        [({"messages": messages}, completion(as_json({"status": "success", "output": output})))],
        model=MODEL,
    )
    call = ToolCall("get_air_quality", args)

    def failures(seed: int, rate: float = 0.2) -> list[int]:
        # history_window=0 and no task: every request is the recorded one
        emulator = _emulator(
            registry, tmp_path, seed, history_window=0, failure_rate=rate, show_task_probability=0.0
        )
        session = emulator.open_session("trajectory-1")
        results = [session.call(weather, call) for _ in range(1000)]
        failed = [i for i, r in enumerate(results) if r.error]
        assert session.injected == len(failed) and len(session.history) == 1000
        assert all(json.loads(r.output) == output for r in results if not r.error)
        for i in failed:
            assert json.loads(results[i].output)["error"].split(":")[0] in (
                "timeout",
                "service unavailable",
                "connection error",
            )
            assert session.history[i]["injected"] is True
        return failed

    first = failures(seed=0)
    assert 150 <= len(first) <= 250  # 1000 draws at p=0.2: mean 200, sd 12.6
    assert failures(seed=0) == first  # seeded: the same run fails the same calls
    assert failures(seed=1) != first
    assert failures(seed=0, rate=0.0) == []


def test_emulator_keeps_the_session_history(registry, weather, tmp_path):
    """Through the real loopback HTTP server, answering each emulated call with a scripted
    result that echoes how many earlier calls the prompt showed."""

    def emulate(request: ReceivedRequest) -> Reply:
        prompt = request.body["messages"][1]["content"]
        shown = prompt.count('{"tool": ')
        if "get_alert_details" in prompt.splitlines()[-1]:
            return Reply(completion("The alert is a heat warning."))  # not the asked JSON
        return Reply(completion(as_json({"status": "success", "output": {"shown": shown}})))

    builder = ComponentBuilder(registry, seed=0, workdir=tmp_path)
    with LoopbackServer(emulate) as server:
        llm = {"name": "openai-compatible", "model": MODEL, "base_url": server.base_url}
        emulator = builder.build(
            "tool_executor",
            ComponentSpec("llm-emulator", {"llm": llm, "failure_rate": 0.0, "history_window": 2}),
        )
        one, two = emulator.open_session("a"), emulator.open_session("b")
        loc = {"location_id": "LOC-101"}
        outputs = [
            json.loads(one.call(weather, ToolCall(name, loc)).output)["shown"]
            for name in ("get_current_weather", "get_air_quality", "get_weather_alerts")
        ]
        assert outputs == [0, 1, 2]  # each call sees the earlier ones (window of 2)
        assert json.loads(two.call(weather, ToolCall("get_air_quality", loc)).output) == {
            "shown": 0
        }  # another session sees nothing of the first
        last = server.requests[-2].body["messages"][1]["content"]
        assert "get_current_weather" in last and "get_air_quality" in last
        # calls that fail their schema never reach the LLM
        before = server.count
        bad = one.call(weather, ToolCall("get_forecast", {"location_id": "LOC-101"}))
        unknown = one.call(weather, ToolCall("get_weather_now", {}))
        assert bad.error and "'days' is a required property" in bad.output
        assert unknown.error and "unknown tool" in unknown.output
        assert server.count == before
        with pytest.raises(EmulatorCallFailed) as malformed:
            one.call(weather, ToolCall("get_alert_details", {"alert_id": "ALR-501"}))
        assert isinstance(malformed.value, LLMCallFailed)
        assert malformed.value.reason == "emulator-malformed"


def test_emulator_without_an_llm_says_how_to_give_it_one(registry, weather, tmp_path):
    builder = ComponentBuilder(registry, seed=0, workdir=tmp_path)
    emulator = builder.build("tool_executor", ComponentSpec("llm-emulator", {"failure_rate": 0.0}))
    with pytest.raises(ConfigError, match="has no LLM: set its llm option"):
        emulator.call(weather, ToolCall("get_air_quality", {"location_id": "LOC-101"}))
