"""The ``offline-chain-walk`` sampler on the bundled catalog: chains, tasks, real rollouts and
the rule-based judge, checked independently of the judge."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import jsonschema
import pytest
from astra_tool_catalog.bundled_source import catalog_server
from astra_tool_catalog.servers import SERVERS
from astra_trajectories.chain_verification import ChainRejected
from astra_trajectories.random_walks import sample_walks
from astra_trajectories.rule_judge import RuleBasedJudge

from astra_core.context import StageContext
from astra_core.errors import ConfigError
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.protocols import TrajectorySampler
from astra_core.records import ToolCall, ToolEdge, ToolGraph, ToolServer, Trajectory, tool_name
from astra_core.registry import ComponentBuilder
from astra_core.store import RecordStore
from astra_core.tool_schemas import tool_returns

REGISTRY = load_plugins().registry


def make_ctx(path: Path, seed: int = 0, shard: tuple[int, int] = (0, 1)):
    builder = ComponentBuilder(REGISTRY, seed=seed)
    store = RecordStore(path / "synth-trajectories", Trajectory).open()
    ctx = StageContext(
        "synth-trajectories", run_dir=path, builder=builder, store=store, quiet=True, shard=shard
    )
    return builder, ctx


def sample_all(
    path: Path,
    seed: int = 0,
    shard: tuple[int, int] = (0, 1),
    source: dict | None = None,
    **options,
) -> tuple[list[Trajectory], StageContext]:
    builder, ctx = make_ctx(path, seed, shard)
    source_spec = ComponentSpec("bundled-catalog", source or {})
    graphs = list(builder.build("tool_graph_source", source_spec).load(ctx))
    sampler = builder.build("trajectory_sampler", ComponentSpec("offline-chain-walk", options))
    out = [t for g in graphs for t in sampler.sample(g, ctx)]
    return out, ctx


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Trajectory], StageContext]:
    return sample_all(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def ok(run) -> list[Trajectory]:
    return [t for t in run[0] if t.status == "ok"]


def servers_by_id() -> dict[str, ToolServer]:
    servers = [catalog_server(spec, state_seed=0) for spec in SERVERS.values()]
    return {s.id: s for s in servers}


def test_sampler_satisfies_its_protocol():
    sampler = ComponentBuilder(REGISTRY).build("trajectory_sampler", "offline-chain-walk")
    assert isinstance(sampler, TrajectorySampler)


def test_at_least_200_valid_trajectories_every_call_validated_and_answered(ok):
    """Checked here by hand, not by the sampler's own judge."""
    assert len(ok) >= 200
    servers = servers_by_id()
    for traj in ok:
        server = servers[traj.metadata["server_id"]]
        returns = tool_returns(server)
        assert traj.tools == server.tools
        offered = {tool_name(t): t for t in traj.tools}
        messages = traj.messages
        assert messages[0]["role"] == "system" and messages[1] == {
            "role": "user",
            "content": traj.task.query,
        }
        calls = []
        for index, message in enumerate(messages):
            for call in message.get("tool_calls") or ():
                assert message["role"] == "assistant" and message["content"]
                name = call["function"]["name"]
                assert name in offered
                assert isinstance(call["function"]["arguments"], str)
                arguments = json.loads(call["function"]["arguments"])
                jsonschema.validate(arguments, offered[name]["function"]["parameters"])
                answers = [m for m in messages[index + 1 :] if m.get("tool_call_id") == call["id"]]
                assert len(answers) == 1 and answers[0]["role"] == "tool"
                assert messages[index + 1] is answers[0]
                output = json.loads(answers[0]["content"])
                jsonschema.validate(output, returns[name])  # a real output of that tool
                calls.append(name)
        assert calls == list(traj.metadata["chain"]) == list(traj.task.target_tools)
        final = messages[-1]
        assert final["role"] == "assistant" and final["content"] and "tool_calls" not in final
        assert traj.scores["overall"] == 1.0 and traj.reward == 1.0


def test_tool_outputs_are_real_executions(ok):
    """Replaying a trajectory's calls on a fresh session gives the very same outputs."""
    executor = ComponentBuilder(REGISTRY, seed=0).build("tool_executor", "python-catalog")
    servers = servers_by_id()
    for traj in random.Random(0).sample(ok, 40):
        session = executor.open_session()
        server = servers[traj.metadata["server_id"]]
        tool_outputs = [m["content"] for m in traj.messages if m["role"] == "tool"]
        for call, expected in zip(traj.tool_calls, tool_outputs, strict=True):
            result = session.call(
                server,
                ToolCall(call["function"]["name"], json.loads(call["function"]["arguments"])),
            )
            assert result.output == expected


def test_chains_stay_within_one_server_and_within_length_bounds(run):
    trajectories, _ = run
    servers = servers_by_id()
    for traj in trajectories:
        chain = traj.metadata["chain"]
        assert 2 <= len(chain) <= 5
        assert len(set(chain)) == len(chain)  # acyclic by default
        assert set(chain) <= set(servers[traj.metadata["server_id"]].tool_names)
        assert traj.task.server_id == traj.metadata["server_id"]
        assert traj.task.origin == "chain" and traj.task.chain_id == traj.metadata["chain_id"]


def test_data_is_varied(ok):
    assert len({t.task.query for t in ok}) == len(ok)
    assert len({t.metadata["chain_id"] for t in ok}) >= 150
    assert len({t.metadata["server_id"] for t in ok}) == len(SERVERS)
    assert set(Counter(len(t.metadata["chain"]) for t in ok)) == {2, 3, 4, 5}
    # tasks of one chain name other entities
    by_chain: dict[str, set[str]] = {}
    for traj in ok:
        by_chain.setdefault(traj.metadata["chain_id"], set()).add(traj.task.metadata["user_values"])
    assert sum(len(v) > 1 for v in by_chain.values()) >= 100


def test_failures_are_failed_records_with_a_reason_not_passed(run):
    trajectories, _ = run
    failed = [t for t in trajectories if t.status == "failed"]
    assert failed  # the catalog's tools do refuse some requests (cancel a shipped order...)
    for traj in failed:
        assert traj.metadata["failure"].startswith(("agent-", "judge-"))
        assert traj.scores["overall"] < 1.0


def test_records_round_trip_through_json(run):
    for traj in run[0]:
        assert Trajectory.from_json(traj.to_json()) == traj


def test_same_seed_same_data_other_seed_other_data(run, tmp_path: Path):
    again, _ = sample_all(tmp_path / "again", source={"servers": ["shop", "bank"]})
    first = [t for t in run[0] if t.metadata["catalog_server"] in ("shop", "bank")]
    assert [t.to_json() for t in again] == [t.to_json() for t in first]
    other, _ = sample_all(tmp_path / "other", seed=7, source={"servers": ["shop", "bank"]})
    assert {t.id for t in other} != {t.id for t in first}
    assert [t.metadata["chain"] for t in other] != [t.metadata["chain"] for t in first]


def test_length_options_bound_the_chains(tmp_path: Path):
    trajectories, _ = sample_all(
        tmp_path, source={"servers": ["calendar"]}, min_length=3, max_length=3
    )
    assert trajectories and {len(t.metadata["chain"]) for t in trajectories} == {3}
    with pytest.raises(ConfigError, match="max_length"):
        ComponentBuilder(REGISTRY).build(
            "trajectory_sampler",
            ComponentSpec("offline-chain-walk", {"min_length": 4, "max_length": 2}),
        )
    with pytest.raises(ConfigError, match="unknown choice 'gpt-judge'"):
        ComponentBuilder(REGISTRY).build(
            "trajectory_sampler", ComponentSpec("offline-chain-walk", {"judge": "gpt-judge"})
        )


def test_resume_skips_work_already_written(tmp_path: Path):
    first, ctx = sample_all(tmp_path, source={"servers": ["library"]})
    for traj in first:
        if traj.status == "ok":
            ctx.store.write(traj)
        else:
            ctx.drop(traj.metadata["failure"], traj.id)
    ctx.store.close()
    again, ctx2 = sample_all(tmp_path, source={"servers": ["library"]})
    assert first and again == []
    ctx2.store.close()


def test_shards_split_the_work_without_overlap(run, tmp_path: Path):
    parts = [sample_all(tmp_path / f"s{i}", shard=(i, 2))[0] for i in range(2)]
    ids = [{t.id for t in part} for part in parts]
    assert ids[0] and ids[1] and not ids[0] & ids[1]
    assert ids[0] | ids[1] == {t.id for t in run[0]}


def test_walks_follow_weights_bounds_and_never_leave_the_server():
    def fn(name: str) -> dict:
        return {
            "type": "function",
            "function": {
                "name": name,
                "description": "A tool here.",
                "parameters": {"type": "object"},
            },
        }

    server = ToolServer(title="s", tools=(fn("a"), fn("b"), fn("c")))
    graph = ToolGraph(
        server=server,
        edges=(
            ToolEdge("a", "b", 9.0),
            ToolEdge("a", "c", 1.0),
            ToolEdge("b", "a", 1.0),
            ToolEdge("b", "elsewhere", 100.0),
            ToolEdge("c", "c", 5.0),
        ),
    )
    walks = sample_walks(graph, random.Random(0), attempts=500, min_length=2, max_length=2)
    assert set(walks) == {("a", "b"), ("a", "c"), ("b", "a")}
    firsts = Counter()
    rng = random.Random(1)
    for _ in range(300):
        firsts.update(sample_walks(graph, rng, attempts=1, min_length=2, max_length=2)[:1])
    assert firsts[("a", "b")] > 4 * firsts[("a", "c")]  # weight 9 against 1
    cyclic = sample_walks(
        graph, random.Random(0), attempts=200, min_length=3, max_length=3, acyclic=False
    )
    assert ("a", "b", "a") in cyclic and all(len(w) == 3 for w in cyclic)
    assert sample_walks(graph, random.Random(0), attempts=200, min_length=3, max_length=3) == [
        ("b", "a", "c")
    ]
    assert all("elsewhere" not in w for w in cyclic)


def test_chain_verification_rejects_unsatisfiable_and_flowless_chains():
    builder = ComponentBuilder(REGISTRY)
    sampler = builder.build("trajectory_sampler", "offline-chain-walk")
    shop = catalog_server(SERVERS["shop"], state_seed=0)
    plan = sampler.verifier.verify(shop, ("find_customer", "search_orders", "cancel_order"))
    assert plan.user_params == ("email",)
    assert plan.describe()[-1] == (
        "cancel_order.order_id <- step 2 search_orders.orders[].order_id (same name)"
    )
    with pytest.raises(ChainRejected) as flowless:
        sampler.verifier.verify(shop, ("find_customer", "search_products"))
    assert flowless.value.reason == "no-data-flow"
    bare = ToolServer(
        title="bare", tools=shop.tools, endpoint={"returns": shop.endpoint["returns"]}
    )
    with pytest.raises(ChainRejected) as unsat:
        sampler.verifier.verify(bare, ("get_order", "cancel_order"))
    assert unsat.value.reason == "unsatisfiable-argument" and "get_order.order_id" in str(
        unsat.value
    )
    # one object feeds one parameter: the new date of a moved event is the user's, not its own
    calendar = catalog_server(SERVERS["calendar"], state_seed=0)
    moved = sampler.verifier.verify(calendar, ("get_event", "reschedule_event"))
    sources = {b.param: b.source for b in moved.steps[1].bindings}
    assert sources == {"event_id": "step", "new_date": "user", "new_start_time": "user"}


def test_rule_judge_catches_what_it_checks():
    shop = catalog_server(SERVERS["shop"], state_seed=0)
    judge = RuleBasedJudge()

    def call(cid: str, name: str, arguments: str) -> dict:
        return {
            "role": "assistant",
            "content": "Calling.",
            "tool_calls": [
                {"id": cid, "type": "function", "function": {"name": name, "arguments": arguments}}
            ],
        }

    good = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u"},
        call("c1", "get_order", '{"order_id": "ORD-1001"}'),
        {"role": "tool", "tool_call_id": "c1", "content": '{"order_id": "ORD-1001"}'},
        {"role": "assistant", "content": "Order ORD-1001 is there."},
    ]
    assert judge.judge(good, shop.tools, target_tools=["get_order"]).passed
    bad = [
        good[0],
        good[1],
        call("c1", "launch_rocket", "{}"),
        call("c2", "get_order", '{"order_id": 5}'),
        {"role": "tool", "tool_call_id": "c2", "content": '{"error": "no order"}'},
        {"role": "assistant", "content": ""},
    ]
    verdict = judge.judge(bad, shop.tools, target_tools=["get_order"])
    assert verdict.scores["offered_tools"] == 0.5 and verdict.scores["valid_arguments"] == 0.0
    assert verdict.scores["calls_answered"] == 0.5 and verdict.scores["no_tool_errors"] == 0.0
    assert set(verdict.failed) == {
        "offered_tools",
        "valid_arguments",
        "calls_answered",
        "no_tool_errors",
        "follows_chain",
        "final_answer",
    }
    ungrounded = [*good[:-1], {"role": "assistant", "content": "All fine, nothing to report."}]
    assert judge.judge(ungrounded, shop.tools).failed == ("final_answer",)


def test_turns_are_bounded(tmp_path: Path):
    trajectories, _ = sample_all(tmp_path, source={"servers": ["weather"]}, max_turns=2)
    long = [t for t in trajectories if len(t.metadata["chain"]) > 2]
    assert long and all(t.status == "failed" for t in long)
    assert {t.metadata["failure"] for t in long} == {"agent-turn-cap"}
    assert all(len(t.tool_calls) <= 2 for t in trajectories)
    assert any(t.status == "ok" for t in trajectories)


def test_each_trajectory_runs_on_its_own_fresh_state(ok):
    """The same order is cancelled successfully in several trajectories: none saw another's
    cancellation."""
    cancelled = Counter(
        json.loads(c["function"]["arguments"])["order_id"]
        for t in ok
        for c in t.tool_calls
        if c["function"]["name"] == "cancel_order"
    )
    assert cancelled and cancelled.most_common(1)[0][1] >= 2
