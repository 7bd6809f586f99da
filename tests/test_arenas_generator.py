"""The ``offline-world`` environment generator, run with the real sandbox."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import attrs
import pytest
from astra_arenas.generator import OfflineWorldGenerator, topology_schedule
from astra_arenas.merging import GoldStep, MergeError, merge_homogeneous
from astra_arenas.relations import relation
from astra_arenas.rl_format import arena_from_rl_row, arena_to_rl_row
from astra_arenas.tool_code import ToolDraft, gold_call

from astra_core.arena_structure import topology_of, validate_structure
from astra_core.arena_verification import run_checks, verify_arena
from astra_core.context import StageContext
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.records import TOPOLOGIES, Arena
from astra_core.registry import ComponentBuilder
from astra_core.store import RecordStore


@pytest.fixture(scope="module")
def builder() -> ComponentBuilder:
    return ComponentBuilder(load_plugins().registry, seed=3)


@pytest.fixture(scope="module")
def sandbox(builder: ComponentBuilder):
    return builder.build("sandbox", "subprocess")


def make_ctx(builder: ComponentBuilder, path: Path, shard: tuple[int, int] = (0, 1)):
    store = RecordStore(path / "synth-arenas", Arena).open()
    return StageContext(
        "synth-arenas", run_dir=path, builder=builder, store=store, quiet=True, shard=shard
    )


def generator(builder: ComponentBuilder, **options) -> OfflineWorldGenerator:
    return builder.build("environment_generator", ComponentSpec("offline-world", options))


@pytest.fixture(scope="module")
def arenas(builder: ComponentBuilder, tmp_path_factory) -> list[Arena]:
    ctx = make_ctx(builder, tmp_path_factory.mktemp("gen"))
    out = list(generator(builder, count=24, max_hops=4).generate(ctx))
    assert ctx.store is not None and ctx.store.dropped_counts() == {}
    return out


def test_all_four_topologies_and_sound_structure(arenas: list[Arena]):
    assert len(arenas) == 24
    counts = Counter(a.topology for a in arenas)
    assert set(counts) == set(TOPOLOGIES) and min(counts.values()) == 6
    for arena in arenas:
        assert validate_structure(arena) == [], arena.id
        assert topology_of(arena.subquestions) == arena.topology
        assert all(s.call is not None and s.tool for s in arena.needed)
        assert len(arena.needed) >= 1
    assert max(a.metadata["hops"] for a in arenas if a.topology == "multi") >= 3
    assert any(not s.needs_tool for a in arenas for s in a.subquestions), "no non-tool leaf"


def test_every_gold_call_passes_in_the_sandbox(arenas: list[Arena], sandbox):
    for arena in arenas:
        results = verify_arena(arena, sandbox, timeout_s=30)
        assert len(results) == len(arena.needed)
        assert all(r.passed for r in results), [r.reason for r in results if not r.passed]
        for sq in arena.needed:
            assert sq.call is not None and sq.tool in arena.tool_code


def test_merged_tools_hold_every_member_and_keep_all_calls_passing(arenas: list[Arena], sandbox):
    merged_arenas = [a for a in arenas if a.metadata["merged"]]
    assert merged_arenas, "24 arenas should include some with homogeneous tools"
    for arena in merged_arenas:
        for name, members in arena.metadata["merged"].items():
            assert arena.tool_names.count(name) == 1
            subs = [s for s in arena.subquestions if s.id in members]
            assert {s.tool for s in subs} == {name}
            for s in subs:
                assert s.call is not None
                subject = next(iter(s.call.arguments.values()))
                assert repr(subject.casefold()) in arena.tool_code[name]
        assert all(r.passed for r in verify_arena(arena, sandbox, timeout_s=30))


def test_distractors_respect_bands_and_exclude_in_scope_domains(arenas: list[Arena]):
    total = 0
    for arena in arenas:
        domains = arena.metadata["tool_domains"]
        in_scope = {s.tool for s in arena.needed}
        scope_domains = {domains[t] for t in in_scope}
        bands = arena.metadata["distractor_bands"]
        assert sorted(n for b in bands.values() for n in b) == sorted(arena.distractors)
        for band, names in bands.items():
            assert len(names) <= 2, band
        for name in arena.distractors:
            total += 1
            assert name not in in_scope
            assert domains[name] not in scope_domains
            assert name in arena.tool_code and name in arena.tool_names
            gold = {s.answer for s in arena.needed}
            assert not any(repr(g) in arena.tool_code[name] for g in gold)
    assert total >= 2 * len(arenas)


def test_merge_rejects_a_merge_that_breaks_a_call(sandbox):
    rel = relation("get_city_population")

    def run(units, checks):
        return run_checks(sandbox, units, checks, timeout_s=30)

    a = GoldStep("q1", ToolDraft(rel, (("Quellar", 1200),)), gold_call(rel, "Quellar"), "1200")
    b = GoldStep("q2", ToolDraft(rel, (("Brio", 3400),)), gold_call(rel, "Brio"), "3400")
    tools, reruns = merge_homogeneous([a, b], run)
    assert len(tools) == 1 and tools[0].members == ("q1", "q2") and reruns == 1
    assert dict(tools[0].draft.rows) == {"Quellar": 1200, "Brio": 3400}
    wrong = GoldStep("q2", b.draft, b.call, "9999")  # its table cannot give this answer
    with pytest.raises(MergeError) as info:
        merge_homogeneous([a, wrong], run)
    assert info.value.reason == "merge-broke-call" and "q2" in info.value.detail
    clash = GoldStep("q2", ToolDraft(rel, (("Quellar", 5),)), gold_call(rel, "Quellar"), "5")
    with pytest.raises(MergeError, match="two values"):
        merge_homogeneous([a, clash], run)


def test_same_index_same_arena_and_offsets_differ(builder: ComponentBuilder):
    gen = generator(builder, count=4)
    one = gen.build(0, 2, "multi", "x")
    assert gen.build(0, 2, "multi", "x") == one
    other = generator(builder, count=4, seed_offset=1).build(0, 2, "multi", "x")
    assert other.question != one.question


def test_resume_skips_and_shards_partition(builder: ComponentBuilder, tmp_path: Path):
    ctx = make_ctx(builder, tmp_path / "a")
    gen = generator(builder, count=6)
    first = list(gen.generate(ctx))
    for arena in first:
        ctx.store.write(arena)
    assert list(gen.generate(ctx)) == [], "a re-run must skip the ids already written"
    halves = [
        {a.id for a in gen.generate(make_ctx(builder, tmp_path / f"s{i}", (i, 2)))}
        for i in range(2)
    ]
    assert not halves[0] & halves[1]
    assert halves[0] | halves[1] == {a.id for a in first}


def test_failed_verification_drops_with_reason(builder: ComponentBuilder, tmp_path: Path):
    ctx = make_ctx(builder, tmp_path)
    gen = generator(builder, count=2, timeout_s=0.001, max_attempts=1)
    assert list(gen.generate(ctx)) == []
    lines = (tmp_path / "synth-arenas" / "dropped.jsonl").read_text().splitlines()
    reasons = [json.loads(line)["reason"] for line in lines]
    assert reasons == ["gold-call-failed", "gold-call-failed"]


def test_generated_arenas_round_trip_as_json_and_rl_rows(arenas: list[Arena]):
    for arena in arenas:
        assert Arena.from_json(arena.to_json()) == arena
        row = json.loads(json.dumps(arena_to_rl_row(arena)))
        assert arena_from_rl_row(row) == arena


def test_topology_schedule_follows_weights():
    order = topology_schedule(
        {"single": 1, "parallel-single": 1, "multi": 2, "parallel-multi": 0}, 40
    )
    counts = Counter(order)
    assert counts == {"single": 10, "parallel-single": 10, "multi": 20}
    assert set(order[:4]) == {"single", "parallel-single", "multi"}
    assert topology_schedule({"single": 1, "multi": 1}, 10)[:7] == topology_schedule(
        {"single": 1, "multi": 1}, 7
    )


def test_bad_options_are_config_errors(builder: ComponentBuilder):
    from astra_core.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown topology 'star'"):
        generator(builder, topologies={"star": 1.0})
    with pytest.raises(ConfigError, match="min_hops"):
        generator(builder, min_hops=4, max_hops=2)


QUESTION_TOOLS = (
    "get_person_employer",
    "get_company_headquarters",
    "get_city_country",
    "get_country_capital",
    "get_city_population",
)


def test_offer_all_gives_every_arena_the_same_tools_in_one_order(
    builder: ComponentBuilder, tmp_path: Path, sandbox
):
    gen = generator(builder, count=8, relations=QUESTION_TOOLS, offer="all", distractors_per_band=0)
    ctx = make_ctx(builder, tmp_path)
    out = list(gen.generate(ctx))
    assert len(out) >= 6, ctx.store.dropped_counts()
    orders = {tuple(t["function"]["name"] for t in a.tools) for a in out}
    assert len(orders) == 1, "every prompt must list the same tools in the same order"
    assert set(next(iter(orders))) == set(QUESTION_TOOLS)
    for arena in out:
        needed = {sq.tool for sq in arena.needed}
        assert needed <= set(QUESTION_TOOLS)
        assert set(arena.distractors) == set(QUESTION_TOOLS) - needed
        assert validate_structure(arena) == []
        assert all(r.passed for r in verify_arena(arena, sandbox))
    # the default leaves the ids of arenas built before these options existed unchanged
    assert generator(builder, count=8).arena_id(0, 1) == generator(
        builder, count=8, offer="needed", relations=()
    ).arena_id(0, 1)
    assert gen.arena_id(0, 1) != generator(builder, count=8).arena_id(0, 1)


def test_familiar_arenas_take_their_names_from_one_cast(builder: ComponentBuilder):
    import random

    from astra_arenas.names import NameForge
    from astra_arenas.world import build_world

    gen = generator(builder, count=12, familiar_names=0.5)
    built = [gen.build(0, i, "multi", f"a{i}") for i in range(12)]
    familiar = [a for a in built if a.metadata.get("familiar_names")]
    fresh = [a for a in built if not a.metadata.get("familiar_names")]
    assert 2 <= len(familiar) <= 10 and fresh
    cast_world = build_world(
        random.Random(0), NameForge(random.Random("offline-world:0:0:cast")), 6
    )
    cast = {name for names in cast_world.entities.values() for name in names}

    def subjects(arena: Arena) -> set[str]:
        return {str(v) for sq in arena.needed for v in sq.call.arguments.values()}

    for arena in familiar:
        assert subjects(arena) <= cast, arena.question
    for arena in fresh:
        assert not subjects(arena) & cast, arena.question
    assert all(validate_structure(a) == [] for a in built)
    # the option is part of an arena's identity only when it is set
    assert gen.arena_id(0, 1) != generator(builder, count=12).arena_id(0, 1)


def test_output_is_the_same_for_any_number_of_workers(builder: ComponentBuilder, tmp_path: Path):
    runs = [
        [
            a.to_json()
            for a in generator(builder, count=10, workers=n).generate(
                make_ctx(builder, tmp_path / str(n))
            )
        ]
        for n in (1, 3)
    ]
    assert runs[0] == runs[1] and len(runs[0]) >= 8


def test_unknown_or_out_of_world_relations_are_config_errors(builder: ComponentBuilder):
    from astra_core.errors import ConfigError

    with pytest.raises(ConfigError, match="'get_team_home_city' is not a question-world"):
        generator(builder, relations=["get_person_employer", "get_team_home_city"])
    with pytest.raises(ConfigError, match="'nope' is not a question-world relation"):
        generator(builder, relations=["nope"])


@pytest.mark.slow
def test_the_stage_writes_over_100_arenas(tmp_path: Path):
    import astra_core

    config = tmp_path / "arenas.toml"
    config.write_text(
        '[run]\nname = "arenas"\nseed = 0\n\n'
        '[synth-arenas.generator]\nname = "offline-world"\ncount = 104\n',
        encoding="utf-8",
    )
    astra_core.run(astra_core.load_config(config), tmp_path / "run", quiet=True)
    arenas = list(RecordStore(tmp_path / "run" / "synth-arenas", Arena).iter_records())
    assert len(arenas) >= 100
    assert {a.topology for a in arenas} == set(TOPOLOGIES)


def test_the_stage_decides_each_arenas_split_once_by_its_id(tmp_path: Path):
    import astra_core
    from astra_core._splits import is_holdout

    config = tmp_path / "arenas.toml"
    config.write_text(
        '[run]\nname = "arenas"\nseed = 0\n\n[synth-arenas]\nholdout_fraction = 0.25\n\n'
        '[synth-arenas.generator]\nname = "offline-world"\ncount = 24\n',
        encoding="utf-8",
    )
    astra_core.run(astra_core.load_config(config), tmp_path / "run", quiet=True)
    arenas = list(RecordStore(tmp_path / "run" / "synth-arenas", Arena).iter_records())
    sides = {a.split for a in arenas}
    assert sides == {"train", "holdout"}, sides
    for arena in arenas:
        assert arena.held_out == is_holdout(arena.id, 0.25)
        # the split is where the arena is used, not what it is: a content id ignores it
        ids = {attrs.evolve(arena, split=side, id="").id for side in ("", "train", "holdout")}
        assert len(ids) == 1


def test_name_syllables_caps_each_generated_word():
    import random
    import re

    from astra_arenas import names

    alt = "|".join
    syllable = f"(?:{alt(names._ONSETS)})(?:{alt(names._VOWELS)})"
    one = re.compile(f"^{syllable}(?:{alt(c for c in names._CODAS if c)})?$", re.IGNORECASE)
    capped, default = names.NameForge(random.Random(4), 1), names.NameForge(random.Random(4))
    people = [capped.new("person") for _ in range(30)]
    assert all(one.match(word) for person in people for word in person.split()), people
    longer = [default.new("person") for _ in range(30)]
    assert not any(all(one.match(w) for w in p.split()) for p in longer)
    # names are drawn from the seed alone
    again = names.NameForge(random.Random(4))
    assert [again.new("person") for _ in range(30)] == longer


def test_no_lookup_is_answered_before_its_own_call(builder: ComponentBuilder, tmp_path: Path):
    """A sub-question's gold answer is neither in the question nor in the real output of a
    gold call that does not take it as its subject: the subtask-f1 verifier cannot count it
    solved unless its own lookup (or one built on it) was made. Short names and two-branch
    questions, as in the quickstart, are where such collisions are most common."""
    from astra_arenas.runtime import ToolCodeRuntime
    from astra_arenas.verifier import SubtaskF1Verifier

    sandbox = builder.build("sandbox", "subprocess")
    ctx = make_ctx(builder, tmp_path)
    arenas = list(
        generator(builder, count=60, name_syllables=1, max_branches=2, max_hops=2).generate(ctx)
    )
    verifier = SubtaskF1Verifier()
    for arena in arenas:
        with ToolCodeRuntime(arena, sandbox) as runtime:
            results = {s.id: runtime.step(s.call) for s in arena.needed if s.call is not None}
        assert verifier.solved_ids(arena, list(results.values())) == tuple(results)
        for sq in arena.needed:
            assert sq.answer not in arena.question, (arena.id, sq.id, arena.question)
            independent = [
                results[s.id] for s in arena.needed if s.id != sq.id and sq.id not in s.depends_on
            ]
            assert sq.id not in verifier.solved_ids(arena, independent), (arena.id, sq.id)


def test_a_name_taken_inside_every_name_of_a_kind_is_named_in_the_error():
    """A short name taken early ("Po") is inside every "... International Airport": no airport
    name can be drawn, and the error says which taken name blocks them."""
    import random

    from astra_arenas.names import NameForge, NamesExhausted

    forge = NameForge(random.Random(0), 1)
    assert forge.reserve("Po")
    with pytest.raises(NamesExhausted, match=r"fresh airport name .* contains 'po', taken"):
        forge.new("airport")
    assert forge.new("city")  # other kinds still draw


def test_an_arena_whose_names_run_out_is_dropped_and_the_rest_are_built(
    builder: ComponentBuilder, tmp_path: Path, monkeypatch
):
    import astra_arenas.generator as gen_module
    from astra_arenas.names import NamesExhausted

    real = gen_module.build_world
    calls = []

    def first_runs_out(rng, forge, size):
        calls.append(1)
        if len(calls) == 1:
            raise NamesExhausted("could not find a fresh airport name after 1000 tries")
        return real(rng, forge, size)

    monkeypatch.setattr(gen_module, "build_world", first_runs_out)
    ctx = make_ctx(builder, tmp_path)
    built = list(generator(builder, count=3, workers=1).generate(ctx))
    assert len(built) == 2
    (line,) = (tmp_path / "synth-arenas" / "dropped.jsonl").read_text().splitlines()
    assert json.loads(line)["reason"] == "names-exhausted"
    assert "fresh airport name" in json.loads(line)["detail"]
