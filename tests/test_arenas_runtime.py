"""The arena runtime an RL rollout drives, with the real sandbox."""

from __future__ import annotations

import shutil

import pytest
from astra_arenas.generator import OfflineWorldGenerator
from astra_arenas.rl_format import arena_from_rl_row
from astra_arenas.runtime import ToolCodeRuntime
from astra_arenas.verifier import SubtaskF1Verifier
from test_arenas_rl_format import released_row

from astra_core.errors import UnisolatedSandboxRefused
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.records import Arena, Episode, SubQuestion, ToolCall
from astra_core.registry import ComponentBuilder

COUNTER_CODE = '''_STATE = {"n": 0}


def bump(step: int = 1) -> str:
    """A stateful tool: returns the running total."""
    _STATE["n"] += step
    return "total=" + str(_STATE["n"])
'''

BROKEN_CODE = """def explode(x: str) -> str:
    raise RuntimeError("kaboom " + x)
"""


def stateful_arena() -> Arena:
    tools = (
        {
            "type": "function",
            "function": {
                "name": "bump",
                "description": "Add to a counter.",
                "parameters": {
                    "type": "object",
                    "properties": {"step": {"type": "integer"}},
                    "required": [],
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "explode",
                "description": "Always fails.",
                "parameters": {
                    "type": "object",
                    "properties": {"x": {"type": "string"}},
                    "required": ["x"],
                },
            },
        },
    )
    subs = (SubQuestion("q1", "Bump twice", "total=2", (), True, "bump", ToolCall("bump", {})),)
    return Arena(
        question="Bump the counter twice.",
        answer="2",
        topology="single",
        subquestions=subs,
        tools=tools,
        tool_code={"bump": COUNTER_CODE, "explode": BROKEN_CODE},
    )


@pytest.fixture(scope="module")
def builder() -> ComponentBuilder:
    return ComponentBuilder(load_plugins().registry, seed=5)


@pytest.fixture(
    scope="module",
    params=[
        "subprocess",
        pytest.param(
            "bubblewrap",
            marks=pytest.mark.skipif(
                shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed"
            ),
        ),
    ],
)
def sandbox(builder: ComponentBuilder, request: pytest.FixtureRequest):
    return builder.build("sandbox", request.param)


@pytest.fixture(scope="module")
def generated(builder: ComponentBuilder) -> list[Arena]:
    gen: OfflineWorldGenerator = builder.build(
        "environment_generator", ComponentSpec("offline-world", {"count": 4})
    )
    return [
        gen.build(5, i, t, f"a{i}")
        for i, t in enumerate(("single", "parallel-single", "multi", "parallel-multi"))
    ]


def test_gold_calls_through_the_runtime_earn_full_reward(generated: list[Arena], sandbox):
    verifier = SubtaskF1Verifier()
    for arena in generated:
        with ToolCodeRuntime(arena, sandbox) as runtime:
            results = [runtime.step(sq.call) for sq in arena.needed if sq.call]
        assert not any(r.error for r in results), [r.output for r in results]
        for sq, result in zip(arena.needed, results, strict=True):
            assert sq.answer in result.output
        reward = verifier.score(arena, Episode.of_calls(arena, results))
        assert reward.value == pytest.approx(1.0), arena.question
        assert reward.solved == tuple(s.id for s in arena.needed)


def test_malformed_calls_become_error_observations(generated: list[Arena], sandbox):
    arena = generated[2]
    gold = arena.needed[0].call
    assert gold is not None
    param = next(iter(gold.arguments))
    bad = [
        "could not decode JSON: Expecting ',' delimiter",
        ToolCall("no_such_tool", {}),
        ToolCall(gold.name, {}),
        ToolCall(gold.name, {param: 42}),
        ToolCall(gold.name, {**gold.arguments, "verbose": True}),
    ]
    with ToolCodeRuntime(arena, sandbox) as runtime:
        results = [runtime.step(c) for c in bad]
        good = runtime.step(gold)
    assert all(r.error for r in results)
    assert all(r.output.startswith("Error: ") for r in results)
    assert "malformed tool call: could not decode JSON" in results[0].output
    assert "unknown tool 'no_such_tool'" in results[1].output and gold.name in results[1].output
    assert f"'{param}' is a required property" in results[2].output
    assert "is not of type 'string'" in results[3].output
    assert "unexpected argument(s) verbose" in results[4].output
    assert not good.error
    reward = SubtaskF1Verifier().score(arena, Episode.of_calls(arena, [*results, good]))
    assert reward.calls == 6 and reward.parts["error_calls"] == 5
    assert reward.precision == pytest.approx(1 / 6, rel=1e-6)


def test_a_tool_that_raises_is_an_error_observation(sandbox):
    with ToolCodeRuntime(stateful_arena(), sandbox) as runtime:
        result = runtime.step(ToolCall("explode", {"x": "now"}))
        assert result.error and "kaboom now" in result.output
        assert not runtime.step(ToolCall("bump", {})).error  # the worker lives on


def test_state_is_isolated_between_runtimes_and_reset(sandbox):
    arena = stateful_arena()
    with ToolCodeRuntime(arena, sandbox) as first, ToolCodeRuntime(arena, sandbox) as second:
        outputs = [first.step(ToolCall("bump", {})).output for _ in range(3)]
        assert outputs == ["total=1", "total=2", "total=3"]
        assert second.step(ToolCall("bump", {"step": 10})).output == "total=10"
        assert first.step(ToolCall("bump", {})).output == "total=4"
        first.reset()
        assert first.step(ToolCall("bump", {})).output == "total=1"


def test_a_plain_run_only_sandbox_still_works(sandbox):
    class RunOnly:  # the Sandbox protocol alone: no persistent worker
        def run(self, code, *, timeout_s=None):
            return sandbox.run(code, timeout_s=timeout_s)

    with ToolCodeRuntime(stateful_arena(), RunOnly()) as runtime:
        assert runtime.step(ToolCall("bump", {})).output == "total=1"
        assert runtime.step(ToolCall("bump", {})).output == "total=1"  # no state kept
        broken = runtime.step(ToolCall("explode", {"x": "y"}))
        assert broken.error and "kaboom y" in broken.output


def test_an_imported_released_arena_runs_and_scores(builder, sandbox):
    arena = arena_from_rl_row(released_row())
    if not sandbox.isolated:  # LLM-written tools: refused unless the config allows it
        with pytest.raises(UnisolatedSandboxRefused, match=f"arena {arena.id}"):
            ToolCodeRuntime(arena, sandbox)
        sandbox = builder.build("sandbox", ComponentSpec("subprocess", {"allow_unisolated": True}))
    with ToolCodeRuntime(arena, sandbox) as runtime:
        found = runtime.step(ToolCall("reservation_finder", {"passenger_name": "Asha Verma"}))
        fee = runtime.step(
            ToolCall("baggage_fee_calculator", {"reservation_id": "RES987654", "extra_kg": 10})
        )
        weather = runtime.step(ToolCall("city_weather", {"city": "Pune"}))
    assert found.output == "Reservation ID: RES987654"
    assert fee.output == "Extra charge: ₹600"
    reward = SubtaskF1Verifier().score(arena, Episode.of_calls(arena, [found, fee, weather]))
    # solved 2 of 2 with 3 calls: r = 1, p = 2/3, F1 = 0.8
    assert reward.value == pytest.approx(0.8, rel=1e-6)


def test_long_outputs_are_truncated(sandbox):
    arena = stateful_arena()
    with ToolCodeRuntime(arena, sandbox, max_output_chars=4) as runtime:
        assert runtime.step(ToolCall("bump", {})).output == "tota\n[output truncated]"
