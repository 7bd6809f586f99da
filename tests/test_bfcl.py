"""The bfcl plugin: BFCL multi-turn entries as arenas, their runtime and BFCL's checks.

Needs bfcl-eval (``pip install --no-deps bfcl-eval mpmath``); skipped without it. Everything
that runs a bfcl-eval class runs in the real sandbox component.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

pytest.importorskip(
    "bfcl_eval", reason="bfcl-eval is not installed: pip install --no-deps bfcl-eval mpmath"
)
pytest.importorskip("mpmath", reason="mpmath is not installed (bfcl-eval's MathAPI needs it)")

from astra_bfcl import data
from astra_bfcl.calls import CallParseError, call_from_dict, parse_call
from astra_bfcl.generator import (
    NO_CALL_ANSWER,
    arena_problems,
)
from astra_bfcl.options import BfclMultiTurnOptions, BfclVerifierOptions
from astra_bfcl.runtime import BfclRuntime, TurnCallResult
from astra_bfcl.schemas import openai_tool
from astra_bfcl.verifier import BfclMultiTurnVerifier
from conftest import astra

from astra_core.config import parse_config
from astra_core.context import StageContext
from astra_core.errors import AstraError, ConfigError
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.records import Arena, Episode, ToolCall, ToolCallResult
from astra_core.registry import ComponentBuilder
from astra_core.store import RecordStore

PER_CATEGORY = 5


# -- helpers shared with test_bfcl_slow.py ------------------------------------------------------


def make_builder() -> ComponentBuilder:
    return ComponentBuilder(load_plugins().registry, seed=0)


def generate(tmp_path: Path, **options: object) -> tuple[list[Arena], StageContext]:
    builder = make_builder()
    store = RecordStore(tmp_path / "synth-arenas", Arena).open()
    ctx = StageContext("synth-arenas", run_dir=tmp_path, builder=builder, store=store, quiet=True)
    gen = builder.build("environment_generator", ComponentSpec("bfcl-multi-turn", options))
    return list(gen.generate(ctx)), ctx


def ground_truth(arena: Arena) -> list[list[ToolCall]]:
    return [[call_from_dict(c) for c in turn] for turn in arena.metadata["ground_truth"]]


def play(arena: Arena, sandbox: object, turns: list[list[ToolCall]]) -> list[TurnCallResult]:
    with BfclRuntime(arena, sandbox) as runtime:
        return runtime.play(turns)


def plain(results: list[TurnCallResult]) -> list[ToolCallResult]:
    """The results as a stored episode has them: no turn attribute."""
    return [ToolCallResult(r.name, r.arguments, r.output, r.error) for r in results]


def drop_call(turns: list[list[ToolCall]], turn: int, index: int) -> list[list[ToolCall]]:
    out = [list(t) for t in turns]
    del out[turn][index]
    return out


# -- fixtures -----------------------------------------------------------------------------------


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
    made, ctx = generate(tmp_path_factory.mktemp("bfcl"), limit=PER_CATEGORY)
    assert ctx.store is not None
    return made


def by_category(arenas: list[Arena], category: str) -> Iterator[Arena]:
    return (a for a in arenas if a.metadata["category"] == category)


# -- conversion ---------------------------------------------------------------------------------


def test_every_function_doc_converts_to_a_valid_openai_schema():
    for class_name in data.MULTI_TURN_CLASSES:
        for doc in data.function_docs(class_name):
            tool = openai_tool(doc)
            assert tool["type"] == "function"
            fn = tool["function"]
            assert fn["name"] == doc["name"] and fn["description"]
            jsonschema.Draft202012Validator.check_schema(fn["parameters"])
            assert fn["parameters"]["type"] == "object"
            assert set(fn["parameters"]["required"]) <= set(fn["parameters"]["properties"])
            for prop, spec in doc["parameters"].get("properties", {}).items():
                converted = fn["parameters"]["properties"][prop]
                expected = {"dict": "object", "float": "number"}.get(spec["type"], spec["type"])
                assert converted["type"] == expected, (doc["name"], prop)
                if spec["type"] == "float":
                    assert converted["format"] == "float"


def test_ground_truth_strings_parse_without_evaluation():
    sig = data.method_signature("GorillaFileSystem", "sort")
    call = parse_call("sort('final_report.pdf')", lambda name: sig)
    assert call == ToolCall("sort", {"file_name": "final_report.pdf"})
    call = parse_call("mv(source='a', destination='b')", lambda name: None)
    assert call.arguments == {"source": "a", "destination": "b"}
    for bad in ("os.system('id')", "cd(folder=open('x').read())", "cd(**kw)", "1 + 1", "cd("):
        with pytest.raises(CallParseError):
            parse_call(bad, lambda name: sig)


def test_entries_convert_to_valid_arenas_that_round_trip(arenas: list[Arena]):
    assert len(arenas) == PER_CATEGORY * len(data.CATEGORIES)
    assert len({a.id for a in arenas}) == len(arenas)
    for arena in arenas:
        meta = arena.metadata
        assert arena_problems(arena) == [], meta["entry_id"]
        assert Arena.from_json(arena.to_json()) == arena
        entry = next(e for e in data.load_category(meta["category"]) if e["id"] == meta["entry_id"])
        # One sub-question per turn, in order; tool turns carry their last ground-truth call.
        assert len(arena.subquestions) == len(entry["question"]) == len(meta["turns"])
        for sq, turn in zip(arena.subquestions, meta["ground_truth"], strict=True):
            assert sq.needs_tool == bool(turn)
            if turn:
                assert sq.call == call_from_dict(turn[-1]) and sq.tool == sq.call.name
                assert sq.answer
            else:
                assert sq.answer == NO_CALL_ANSWER and sq.call is None
        assert arena.question == meta["turns"][0]
        assert arena.topology == ("multi" if len(arena.needed) > 1 else "single")
        assert meta["ground_truth_source"] == entry["ground_truth"]
        assert meta["initial_config"] == entry["initial_config"]
        assert meta["long_context"] == (meta["category"] == "long_context")
        offered = set(arena.tool_names)
        assert set(arena.tool_code) == offered
        for class_name in meta["involved_classes"]:
            assert {d["name"] for d in data.function_docs(class_name)} <= offered
        assert all(c["name"] in offered for t in meta["ground_truth"] for c in t)
    for arena in by_category(arenas, "miss_func"):
        added = arena.metadata["added_functions"]
        assert added, arena.metadata["entry_id"]
        for turn, names in added.items():
            assert arena.metadata["turns"][int(turn)]  # BFCL's "I have updated ..." message
            assert set(names) <= set(arena.tool_names)


def test_generator_selects_resumes_and_drops(tmp_path: Path, builder: ComponentBuilder):
    made, ctx = generate(tmp_path, categories=["miss_param"], ids=["multi_turn_miss_param_7"])
    assert [a.metadata["entry_id"] for a in made] == ["multi_turn_miss_param_7"]
    assert ctx.store is not None
    for arena in made:
        ctx.store.write(arena)
    ctx.store.close()
    again, _ = generate(tmp_path, categories=["miss_param"], ids=["multi_turn_miss_param_7"])
    assert again == []  # resume: nothing new
    # A sandbox limit during the replay drops the entries with their reason.
    none, ctx = generate(tmp_path / "slow", categories=["base"], limit=2, timeout_s=0.001)
    assert none == [] and ctx.store is not None
    assert ctx.store.dropped_counts() == {"replay-failed": 2}
    with pytest.raises(ConfigError, match="unknown BFCL multi-turn category 'web_search'"):
        builder.build(
            "environment_generator",
            ComponentSpec("bfcl-multi-turn", {"categories": ["web_search"]}),
        )


# -- ground truth replays at full reward; a dropped call lowers it -------------------------------


def test_ground_truth_replay_gets_full_reward(arenas: list[Arena], sandbox, verifier):
    for arena in arenas:
        results = play(arena, sandbox, ground_truth(arena))
        assert not any(r.error for r in results), [r.output for r in results if r.error]
        reward = verifier.score(arena, Episode.of_calls(arena, results))
        assert reward.value == 1.0, (arena.metadata["entry_id"], reward.parts)
        assert reward.parts["bfcl_valid"] == 1.0 and reward.parts["replay_mismatch"] == 0.0
        assert reward.solved == tuple(
            sq.id
            for sq in arena.subquestions
            if sq.needs_tool or verifier.options.check_irrelevance
        )
        # What the agent saw is what BFCL's replay produced: each tool turn's answer included.
        outputs = [r.output for r in results]
        for sq in arena.needed:
            assert sq.answer in outputs
    # A stored episode (no turn attribute): the inferred boundaries pass too.
    for arena in (next(by_category(arenas, c)) for c in data.CATEGORIES):
        inferred = verifier.score(
            arena, Episode.of_calls(arena, plain(play(arena, sandbox, ground_truth(arena))))
        )
        assert inferred.value == 1.0 and inferred.parts["inferred_turns"] == 1.0


def test_dropping_a_ground_truth_call_lowers_the_reward(arenas: list[Arena], sandbox, verifier):
    for arena in list(by_category(arenas, "base"))[:3]:
        results = play(arena, sandbox, ground_truth(arena))
        for index, dropped in enumerate(results):
            # The episode without that one call (the verifier replays what remains).
            reward = verifier.score(
                arena, Episode.of_calls(arena, results[:index] + results[index + 1 :])
            )
            assert reward.value < 1.0, (arena.metadata["entry_id"], dropped)
            assert reward.parts["bfcl_valid"] == 0.0
    # Through the runtime too: the agent never makes the call.
    arena = next(by_category(arenas, "long_context"))
    turns = ground_truth(arena)
    assert (
        verifier.score(
            arena, Episode.of_calls(arena, play(arena, sandbox, drop_call(turns, 0, 0)))
        ).value
        < 1.0
    )


def test_verdicts_name_bfcl_error_types(arenas: list[Arena], sandbox, verifier):
    arena = next(a for a in by_category(arenas, "base") if a.metadata["entry_id"].endswith("_0"))
    turns = ground_truth(arena)
    # Turn 0 of base_0 is cd, mkdir, mv: without the mkdir, the file system differs.
    assert [c.name for c in turns[0]] == ["cd", "mkdir", "mv"]
    results = play(arena, sandbox, drop_call(turns, 0, 1))
    verdict = verifier.check(arena, results)
    assert verdict.turns[0].error_type == "multi_turn:instance_state_mismatch"
    # Nothing at all in turn 0: BFCL's empty-turn error.
    results = play(arena, sandbox, [[], *turns[1:]])
    verdict = verifier.check(arena, results)
    assert verdict.turns[0].error_type == "multi_turn:empty_turn_model_response"
    reward = verifier.score(arena, Episode.of_calls(arena, results))
    assert reward.parts["turn_0"] == 0.0 and reward.parts["empty_turn_model_response"] >= 1


def test_calls_in_a_turn_without_ground_truth_fail_only_with_the_irrelevance_check(
    arenas: list[Arena], sandbox, builder: ComponentBuilder
):
    arena = next(
        a
        for a in by_category(arenas, "miss_param")
        if "GorillaFileSystem" in a.metadata["involved_classes"]
    )
    turns = ground_truth(arena)
    empty = next(k for k, t in enumerate(turns) if not t)
    turns[empty] = [ToolCall("pwd", {})]  # harmless, but the user gave too little to act on
    results = play(arena, sandbox, turns)
    strict = builder.build("verifier", "bfcl-multi-turn")
    lenient = builder.build(
        "verifier", ComponentSpec("bfcl-multi-turn", {"check_irrelevance": False})
    )
    judged = strict.score(arena, Episode.of_calls(arena, results))
    assert judged.parts[f"turn_{empty}"] == 0.0 and judged.parts["irrelevance_error"] == 1.0
    assert judged.value == pytest.approx(1 - 1 / len(turns))
    assert lenient.score(arena, Episode.of_calls(arena, results)).value == 1.0


def test_turn_boundaries_matter(arenas: list[Arena], sandbox, verifier):
    arena = next(a for a in by_category(arenas, "base") if len(a.needed) >= 3)
    turns = ground_truth(arena)
    results = play(arena, sandbox, turns)
    ends = [sum(len(t) for t in turns[: k + 1]) for k in range(len(turns))]
    assert verifier.score(arena, Episode.of_calls(arena, results), turn_ends=ends).value == 1.0
    # Everything done in the first turn: only that turn's state can match.
    crammed = verifier.score(
        arena, Episode.of_calls(arena, results), turn_ends=[len(results)] * len(turns)
    )
    assert crammed.value < 1.0
    # Turn attributes win over inference; explicit turn_ends win over both.
    shifted = [TurnCallResult(r.name, r.arguments, r.output, r.error, turn=0) for r in results]
    assert verifier.score(arena, Episode.of_calls(arena, shifted)).value < 1.0
    assert verifier.score(arena, Episode.of_calls(arena, shifted), turn_ends=ends).value == 1.0
    with pytest.raises(AstraError, match="non-decreasing"):
        verifier.score(arena, Episode.of_calls(arena, results), turn_ends=[3, 1])


def test_options_defaults():
    assert BfclMultiTurnOptions().categories == data.CATEGORIES
    assert BfclVerifierOptions().check_irrelevance is True


def test_the_documented_configs_are_valid(builder: ComponentBuilder):
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    text = (Path(__file__).resolve().parent.parent / "docs" / "bfcl.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    generator_spec = tomllib.loads(blocks[0])["synth-arenas"]["generator"]
    verifier_spec = tomllib.loads(blocks[1])["verifier"]
    gen = builder.registry.resolve(
        "environment_generator",
        ComponentSpec.parse(generator_spec, key="generator"),
        key="generator",
    )
    assert gen.options.categories == data.CATEGORIES and gen.options.limit == 0
    ver = builder.registry.resolve(
        "verifier", ComponentSpec.parse(verifier_spec, key="verifier"), key="verifier"
    )
    assert ver.options.check_irrelevance is True
    training = parse_config({**tomllib.loads(blocks[0]), **tomllib.loads(blocks[2])})
    resolved = training.resolve(builder.registry)
    for stage, field in (("train-rl", "trainer"), ("eval", "evaluator")):
        options = getattr(resolved.stages[stage], field).options
        # no verifier named: each arena's own, which the bfcl plugin names for BFCL arenas
        assert options.verifier is None and options.rollout.max_turns == 20
    bfcl_arena = Arena(
        question="q",
        answer="",
        topology="single",
        subquestions=(),
        tools=(),
        tool_code={},
        metadata={"source": "bfcl-eval"},
    )
    hook = load_plugins().hook
    assert hook.astra_arena_verifier(arena=bfcl_arena) == "bfcl-multi-turn"


# -- the stage, from a config file ----------------------------------------------------------------


def test_synth_arenas_stage_from_a_config(tmp_path: Path):
    (tmp_path / "run.toml").write_text(
        """
[run]
name = "bfcl"

[synth-arenas.generator]
name = "bfcl-multi-turn"
categories = ["base", "long_context"]
limit = 2
"""
    )
    done = astra(
        "run",
        str(tmp_path / "run.toml"),
        "--out",
        str(tmp_path / "out"),
        "--stages",
        "synth-arenas",
        "-q",
    )
    assert done.returncode == 0, done.stderr
    rows = [
        json.loads(line)
        for p in sorted((tmp_path / "out" / "synth-arenas").glob("data-*"))
        for line in p.read_text().splitlines()
    ]
    assert sorted(r["metadata"]["entry_id"] for r in rows) == [
        "multi_turn_base_0",
        "multi_turn_base_1",
        "multi_turn_long_context_0",
        "multi_turn_long_context_1",
    ]
