"""Renamed copies of offline-world arenas, and the demonstrations replayed from them."""

from __future__ import annotations

import json
import random
import re

import attrs
import pytest
from astra_arenas.demonstrations import arena_demonstration, arena_demonstrations
from astra_arenas.names import NameForge
from astra_arenas.renaming import fresh_names, renamed_arena, renamed_demonstration
from astra_arenas.retries import misspelt, with_retry
from astra_arenas.runtime import ToolCodeRuntime

from astra_core._splits import is_holdout
from astra_core.arena_verification import verify_arena
from astra_core.context import StageContext
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.records import Arena, ToolCall
from astra_core.registry import ComponentBuilder
from astra_core.store import RecordStore


@pytest.fixture(scope="module")
def builder() -> ComponentBuilder:
    return ComponentBuilder(load_plugins().registry, seed=5)


@pytest.fixture(scope="module")
def sandbox(builder: ComponentBuilder):
    return builder.build("sandbox", "subprocess")


@pytest.fixture(scope="module")
def arenas(builder: ComponentBuilder, tmp_path_factory) -> list[Arena]:
    path = tmp_path_factory.mktemp("gen")
    store = RecordStore(path / "synth-arenas", Arena).open()
    ctx = StageContext("synth-arenas", run_dir=path, builder=builder, store=store, quiet=True)
    spec = ComponentSpec("offline-world", {"count": 12, "max_hops": 3, "offer": "all"})
    return list(builder.build("environment_generator", spec).generate(ctx))


def _skeleton(text: str, names: dict[str, str]) -> str:
    """``text`` with every entity name replaced by its kind: what a renaming must keep."""
    pattern = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.sub(rf"(?<!\w)(?:{pattern})(?!\w)", lambda m: f"<{names[m.group()]}>", text)


def test_a_renamed_arena_passes_verification_with_no_old_name_left(arenas, sandbox):
    for arena in arenas:
        copy = renamed_arena(arena, fresh_names(arena, random.Random(arena.id)), "~r1")
        assert copy.id == arena.id + "~r1" and copy.metadata["renamed_from"] == arena.id
        results = verify_arena(copy, sandbox, timeout_s=30)
        assert results and all(r.passed for r in results), [r.reason for r in results]

        text = json.dumps(copy.to_dict())
        old, new = set(arena.metadata["names"]), set(copy.metadata["names"])
        assert len(new) == len(old)
        for name in old - new:
            assert not re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text), (arena.id, name)
        # the same facts and structure: only the names differ
        for before, after in [(arena.question, copy.question), (arena.answer, copy.answer)]:
            assert _skeleton(after, copy.metadata["names"]) == _skeleton(
                before, arena.metadata["names"]
            )
        assert copy.topology == arena.topology and copy.tools == arena.tools
        assert [s.depends_on for s in copy.subquestions] == [
            s.depends_on for s in arena.subquestions
        ]
        assert copy.question != arena.question


def test_renamings_differ_by_draw_and_repeat_for_the_same_one(arenas):
    arena = arenas[0]
    a = renamed_arena(arena, fresh_names(arena, random.Random(1)), "~a")
    b = renamed_arena(arena, fresh_names(arena, random.Random(2)), "~b")
    again = renamed_arena(arena, fresh_names(arena, random.Random(1)), "~a")
    assert a.question != b.question
    assert a == again


def test_fresh_names_are_those_of_a_forge_that_took_the_old_names_first(arenas):
    """The old names are taken once per arena and forked for each renaming: the names drawn
    are those of a new forge that takes them all before drawing."""
    for arena in arenas[:4]:
        for k in range(3):
            names = arena.metadata["names"]
            forge = NameForge(random.Random(k), int(arena.metadata.get("name_syllables", 0)))
            for old in names:
                forge.reserve(old)
            expected = {old: forge.new(kind) for old, kind in names.items()}
            assert fresh_names(arena, random.Random(k)) == expected


def test_an_arena_without_recorded_names_is_refused_by_id(arenas):
    bare = attrs.evolve(arenas[0], metadata={}, id="arena-without-names")
    with pytest.raises(ValueError, match="arena-without-names: no entity names"):
        fresh_names(bare, random.Random(0))


def _replay(arena: Arena, sandbox) -> list[dict]:
    with ToolCodeRuntime(arena, sandbox) as runtime:
        return list(arena_demonstration(arena, runtime, "Answer.").messages)


def test_a_renamed_demonstration_is_the_sandbox_replay_of_the_renamed_arena(arenas, sandbox):
    for arena in arenas:
        mapping = fresh_names(arena, random.Random(arena.id))
        with ToolCodeRuntime(arena, sandbox) as runtime:
            demo = arena_demonstration(arena, runtime, "Answer.")
        copy = renamed_demonstration(demo, mapping)
        assert list(copy.messages) == _replay(renamed_arena(arena, mapping, "~r1"), sandbox)
        assert copy.messages != demo.messages and copy.id != demo.id
        assert copy.metadata["renamed_from"] == arena.id
        # ids follow the demonstration and the mapping: the same again, another for another
        other = renamed_demonstration(demo, fresh_names(arena, random.Random(arena.id + "~")))
        assert renamed_demonstration(demo, dict(mapping)).id == copy.id
        assert other.id not in (copy.id, demo.id)
        assert len({demo.task.id, copy.task.id, other.task.id}) == 3


def test_a_name_the_renaming_cannot_see_is_an_error_naming_the_arena(arenas, sandbox):
    arena = arenas[0]
    with ToolCodeRuntime(arena, sandbox) as runtime:
        demo = arena_demonstration(arena, runtime, "Answer.")
    old = next(iter(arena.metadata["names"]))
    # a tool table's key (the name casefolded, quoted) is renamed in tool code, not in text
    key = {"role": "user", "content": repr(old.casefold())}
    leaky = attrs.evolve(demo, messages=(*demo.messages, key))
    with pytest.raises(ValueError, match=f"arena {arena.id}: name .* is left after renaming"):
        renamed_demonstration(leaky, fresh_names(arena, random.Random(0)))


def test_demonstrations_add_renamed_replays(arenas, sandbox):
    training = [a for a in arenas if not is_holdout(a.id, 0.25)]
    demos = [d for a in training for d in arena_demonstrations(a, sandbox, renamings=2)]
    assert 0 < len(training) < len(arenas)
    assert len(demos) == 3 * len(training)
    for i, arena in enumerate(training):
        original, *copies = demos[3 * i : 3 * i + 3]
        assert original.metadata["arena_id"] == arena.id
        assert "renamed_from" not in original.metadata
        questions = {original.messages[0]["content"]}
        for copy in copies:
            assert copy.metadata["renamed_from"] == arena.id
            questions.add(copy.messages[0]["content"])
            # the tool outputs are the sandbox's, and carry the copy's names, not the original's
            outputs = " ".join(m["content"] for m in copy.messages if m["role"] == "tool")
            assert "error" not in outputs
            assert copy.messages[-1]["content"].startswith("The answer is ")
            final = copy.messages[-1]["content"].removeprefix("The answer is ").rstrip(".")
            assert all(part in outputs for part in final.split("; "))
        assert len(questions) == 3


class _CountingSandbox:
    """The sandbox, counting the sessions opened through it (each one starts an interpreter)."""

    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox
        self.sessions = 0

    def run(self, *args, **kwargs):
        return self.sandbox.run(*args, **kwargs)

    def session(self, *args, **kwargs):
        self.sessions += 1
        return self.sandbox.session(*args, **kwargs)


def test_an_arena_and_its_renamed_copies_replay_in_one_session(arenas, sandbox):
    """The copies come from the one replay, renamed (and a retry's slip runs in the same
    session): an arena's demonstrations start one sandboxed interpreter, not one per copy
    nor a spare one before the replay."""
    counting = _CountingSandbox(sandbox)
    demos = arena_demonstrations(arenas[0], counting, renamings=3, retries=1)
    assert len(demos) == 4 and counting.sessions == 1


def _calls_and_outputs(messages) -> list[tuple[dict, str]]:
    """Each call of the conversation with the output that answers it, in order."""
    outputs = {m["tool_call_id"]: m["content"] for m in messages if m["role"] == "tool"}
    return [
        (c["function"], outputs[c["id"]])
        for m in messages
        if m["role"] == "assistant"
        for c in m.get("tool_calls") or []
    ]


def test_a_retried_copy_is_what_the_renamed_arena_prints_for_the_slip_and_the_repair(
    arenas, sandbox
):
    for arena in arenas:
        rng = random.Random(arena.id)
        mapping = fresh_names(arena, rng)
        with ToolCodeRuntime(arena, sandbox) as runtime:
            copy = renamed_demonstration(arena_demonstration(arena, runtime, "Answer."), mapping)
            retried = with_retry(copy, rng, runtime.step, taken=[*mapping, *mapping.values()])
        pairs = _calls_and_outputs(retried.messages)
        assert len(pairs) == len(_calls_and_outputs(copy.messages)) + 1
        # every call, the misspelt one included, prints in the renamed arena what the copy shows
        with ToolCodeRuntime(renamed_arena(arena, mapping, "~r1"), sandbox) as renamed:
            renamed.reset()
            printed = [
                renamed.step(ToolCall(f["name"], json.loads(f["arguments"]))) for f, _ in pairs
            ]
        assert [p.output for p in printed] == [out for _, out in pairs]
        failed = ['"error"' in p.output for p in printed]
        assert failed.count(True) == 1
        # the successful calls are the copy's (the retry comes after its turn's other calls)
        ok = [pair for pair, f in zip(pairs, failed, strict=True) if not f]
        assert sorted(map(repr, ok)) == sorted(map(repr, _calls_and_outputs(copy.messages)))
        # the slip: one first letter changed, in a turn kept out of the loss, then repeated right
        wrong = json.loads(pairs[failed.index(True)][0]["arguments"])
        turns = [m for m in retried.messages if m["role"] == "assistant"]
        assert [m.get("weight", 1) for m in turns].count(0) == 1
        k = next(n for n, m in enumerate(turns) if m.get("weight") == 0)
        assert wrong in [json.loads(c["function"]["arguments"]) for c in turns[k]["tool_calls"]]
        (retry,) = turns[k + 1]["tool_calls"]
        right = json.loads(retry["function"]["arguments"])
        (key,) = [key for key in wrong if wrong[key] != right[key]]
        diffs = [(a, b) for a, b in zip(wrong[key], right[key], strict=True) if a != b]
        assert len(diffs) == 1 and retried.metadata["retried"]["misspelt"] == wrong[key]


def test_a_misspelling_is_none_of_the_names_taken():
    taken = [f"{c}ora" for c in "ABCDEFGHIJKLMNOPQRSTUVWXY"]  # all but "Zora"
    assert misspelt("Vora", random.Random(0), taken) == "Zora"
    with pytest.raises(ValueError, match="no misspelling of 'Vora'"):
        misspelt("Vora", random.Random(0), [*taken, "zora"])


def test_demonstrations_retry_in_the_first_copies_only(arenas, sandbox):
    demos = [d for a in arenas for d in arena_demonstrations(a, sandbox, renamings=2, retries=1)]
    plain = [d for a in arenas for d in arena_demonstrations(a, sandbox, renamings=2)]
    assert len(demos) == len(plain)
    for i in range(0, len(demos), 3):
        original, first, second = demos[i : i + 3]
        assert "retried" not in original.metadata and "retried" not in second.metadata
        assert first.metadata["retried"]["misspelt"]
        # the renamings are the same with or without the retry
        assert second == plain[i + 2] and first.messages[0] == plain[i + 1].messages[0]
    with pytest.raises(ValueError, match=r"retries \(3\) must be between 0 and renamings \(2\)"):
        arena_demonstrations(arenas[0], sandbox, renamings=2, retries=3)
