"""The runtime of BFCL arenas (state across calls and turns, isolation between episodes,
held-out functions, error observations) and the replay in the sandbox backends."""

from __future__ import annotations

import pytest

pytest.importorskip(
    "bfcl_eval", reason="bfcl-eval is not installed: pip install --no-deps bfcl-eval mpmath"
)
pytest.importorskip("mpmath", reason="mpmath is not installed (bfcl-eval's MathAPI needs it)")

from astra_bfcl import data
from astra_bfcl.replay import payload_for, run_replays
from astra_bfcl.runtime import BfclRuntime
from astra_bfcl.verifier import BfclMultiTurnVerifier
from test_bfcl import by_category, generate, ground_truth, make_builder, play

from astra_core.errors import AstraError
from astra_core.options import ComponentSpec
from astra_core.records import Arena, Episode, ToolCall
from astra_core.registry import ComponentBuilder


@pytest.fixture(scope="module")
def builder() -> ComponentBuilder:
    return make_builder()


@pytest.fixture(scope="module")
def sandbox(builder: ComponentBuilder):
    return builder.build("sandbox", "subprocess")


@pytest.fixture(scope="module")
def verifier(builder: ComponentBuilder) -> BfclMultiTurnVerifier:
    return builder.build("verifier", "bfcl-multi-turn")


@pytest.fixture(scope="module")
def arenas(tmp_path_factory: pytest.TempPathFactory) -> list[Arena]:
    """The first entry of each category."""
    made, _ = generate(tmp_path_factory.mktemp("bfcl-runtime"), limit=1)
    assert len(made) == len(data.CATEGORIES)
    return made


def test_runtime_keeps_state_across_calls_and_turns_and_isolates_episodes(arenas, sandbox):
    arena = next(a for a in arenas if "GorillaFileSystem" in a.metadata["involved_classes"])
    with BfclRuntime(arena, sandbox) as runtime:
        first = runtime.step(ToolCall("pwd", {})).output
        runtime.step(ToolCall("mkdir", {"dir_name": "astra_probe"}))
        assert runtime.next_turn() == arena.metadata["turns"][1]
        listing = runtime.step(ToolCall("ls", {})).output
        assert "astra_probe" in listing
        assert [r.turn for r in runtime.calls] == [0, 0, 1]
        assert runtime.turn_ends == (2,)
        runtime.reset()  # a new episode: a fresh worker from the initial config
        assert "astra_probe" not in runtime.step(ToolCall("ls", {})).output
        assert runtime.step(ToolCall("pwd", {})).output == first
    with BfclRuntime(arena, sandbox) as other:
        assert "astra_probe" not in other.step(ToolCall("ls", {})).output


def test_runtime_rejects_what_cannot_run_and_offers_held_out_functions_late(arenas, sandbox):
    arena = next(by_category(arenas, "miss_func"))
    (turn, names), *_ = arena.metadata["added_functions"].items()
    held = names[0]
    schema_props = next(t for t in arena.tools if t["function"]["name"] == held)
    required = schema_props["function"]["parameters"]["required"]
    with BfclRuntime(arena, sandbox) as runtime:
        assert held not in [t["function"]["name"] for t in runtime.tools]
        early = runtime.step(ToolCall(held, dict.fromkeys(required, "x")))
        assert early.error and "unknown tool" in early.output
        bad = [
            runtime.step("could not decode {"),
            runtime.step(ToolCall("no_such_tool", {})),
            runtime.step(ToolCall(arena.subquestions[0].tool or "", {"bogus": 1})),
        ]
        assert all(r.error and r.output.startswith("Error:") for r in bad)
        while runtime.turn < int(turn):
            runtime.next_turn()
        assert held in [t["function"]["name"] for t in runtime.tools]
        late = runtime.step(ToolCall(held, dict.fromkeys(required, "x")))
        assert not late.error  # it ran (BFCL's own error text if the file is missing)
        while runtime.next_turn() is not None:
            pass
        over = runtime.step(ToolCall("ls", {}))
        assert over.error and "conversation is over" in over.output


def test_runtime_works_with_a_sandbox_that_only_runs_code(arenas, sandbox, verifier):
    class RunOnly:  # the Sandbox protocol alone: no session()
        def run(self, code: str, *, timeout_s: float | None = None):
            return sandbox.run(code, timeout_s=timeout_s)

    arena = next(a for a in by_category(arenas, "base") if len(a.needed) >= 2)
    turns = ground_truth(arena)[:2]
    with BfclRuntime(arena, RunOnly()) as runtime:
        results = runtime.play(turns)
    with BfclRuntime(arena, sandbox) as runtime:
        expected = runtime.play(turns)
    assert [r.output for r in results] == [r.output for r in expected]


def test_non_bfcl_arena_is_refused_with_a_clear_error(verifier, sandbox):
    arena = Arena(
        question="q",
        answer="a",
        topology="single",
        subquestions=(),
        tools=(),
        tool_code={},
        metadata={"source": "offline-world"},
    )
    with pytest.raises(AstraError, match="not a BFCL multi-turn arena"):
        verifier.score(arena, Episode.of_calls(arena, []))
    with pytest.raises(AstraError, match="not a BFCL multi-turn arena"):
        BfclRuntime(arena, sandbox)


def test_replay_batches_report_per_entry_errors(arenas, sandbox):
    good = payload_for(arenas[0])
    broken = {**good, "id": "broken", "classes": ["NoSuchAPI"]}
    ok, failed = run_replays(sandbox, [good, broken])
    assert ok["ok"] and all(t["passed"] for t in ok["result"]["turns"])
    assert not failed["ok"] and "NoSuchAPI" in failed["error"]


def test_bubblewrap_sandbox_sees_bfcl_eval(arenas: list[Arena], builder: ComponentBuilder):
    import shutil

    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap (bwrap) is not installed")
    sandbox = builder.build("sandbox", "bubblewrap")
    verifier = builder.build(
        "verifier", ComponentSpec("bfcl-multi-turn", {"sandbox": "bubblewrap"})
    )
    for arena in (next(by_category(arenas, c)) for c in data.CATEGORIES):
        results = play(arena, sandbox, ground_truth(arena))
        assert not any(r.error for r in results), [r.output for r in results if r.error]
        reward = verifier.score(arena, Episode.of_calls(arena, results))
        assert reward.value == 1.0 and reward.parts["replay_mismatch"] == 0.0


def test_a_call_that_kills_the_worker_ends_the_episode_state_not_the_host(
    tmp_path_factory: pytest.TempPathFactory, builder: ComponentBuilder, verifier
):
    (arena,) = generate(
        tmp_path_factory.mktemp("bfcl-math"), categories=["base"], ids=["multi_turn_base_31"]
    )[0]
    quick = builder.build("sandbox", ComponentSpec("subprocess", {"timeout_s": 2.0}))
    turns = ground_truth(arena)
    with BfclRuntime(arena, quick) as runtime:
        first = [runtime.step(c) for c in turns[0]]
        assert not any(r.error for r in first)
        # 7 ** 10**9 has ~850 million digits: a limit ends the worker and its state.
        bomb = runtime.step(ToolCall("power", {"base": 7, "exponent": 10**9}))
        assert bomb.error and "the call failed" in bomb.output
        after = runtime.step(turns[0][0])
        assert after.error and "sandbox worker failed" in after.output
        calls = list(runtime.calls)
    # Calls that did not run are not replayed: the first turn still passes.
    verdict = verifier.check(arena, calls)
    assert verdict.executed == len(first) and verdict.turns[0].passed
