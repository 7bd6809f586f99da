"""Structural validation (no LLM, no sandbox): each violation is caught and named."""

from __future__ import annotations

import attrs
import pytest
from astra_arenas.relations import relation
from astra_arenas.tool_code import ToolDraft, gold_call

from astra_core.arena_structure import (
    code_problems,
    decomposition_problems,
    topology_of,
    validate_structure,
)
from astra_core.records import Arena, SubQuestion, ToolCall


def sound() -> Arena:
    """A correct two-hop arena with a non-tool leaf and one distractor."""
    ceo = relation("get_company_ceo")
    home = relation("get_person_home_city")
    decoy = relation("get_team_home_city")
    drafts = {
        ceo.name: ToolDraft(ceo, (("Zorvex Labs", "Vel Tora"),)),
        home.name: ToolDraft(home, (("Vel Tora", "Quellar"),)),
        decoy.name: ToolDraft(decoy, (("Brio Hawks", "Marrow"),)),
    }
    subs = (
        SubQuestion(
            "q1",
            "Who is the CEO of Zorvex Labs?",
            "Vel Tora",
            (),
            True,
            ceo.name,
            gold_call(ceo, "Zorvex Labs"),
        ),
        SubQuestion(
            "q2",
            "What is the home city of Vel Tora?",
            "Quellar",
            ("q1",),
            True,
            home.name,
            gold_call(home, "Vel Tora"),
        ),
        SubQuestion("q3", "How many letters has Quellar?", "7", ("q2",), False),
    )
    return Arena(
        question="How many letters has the home city of the CEO of Zorvex Labs?",
        answer="7",
        topology="multi",
        subquestions=subs,
        tools=tuple(d.schema() for d in drafts.values()),
        tool_code={n: d.code() for n, d in drafts.items()},
        distractors=(decoy.name,),
    )


def with_subs(arena: Arena, *subs: SubQuestion) -> Arena:
    return attrs.evolve(arena, subquestions=subs, id="x")


def test_the_sound_arena_has_no_problem():
    assert validate_structure(sound()) == []


def _sub(arena: Arena, sid: str) -> SubQuestion:
    return next(s for s in arena.subquestions if s.id == sid)


def test_unknown_dependency():
    a = sound()
    bad = attrs.evolve(_sub(a, "q2"), depends_on=("q9",))
    problems = validate_structure(with_subs(a, _sub(a, "q1"), bad, _sub(a, "q3")))
    assert any("depends on unknown id 'q9'" in p for p in problems)


def test_self_dependency():
    a = sound()
    bad = attrs.evolve(_sub(a, "q1"), depends_on=("q1",))
    problems = validate_structure(with_subs(a, bad, _sub(a, "q2"), _sub(a, "q3")))
    assert any("'q1' depends on itself" in p for p in problems)


def test_cycle():
    a = sound()
    q1 = attrs.evolve(_sub(a, "q1"), depends_on=("q2",))
    problems = validate_structure(with_subs(a, q1, _sub(a, "q2"), _sub(a, "q3")))
    assert any(p.startswith("dependency cycle: ") and "q1" in p and "q2" in p for p in problems)


def test_duplicate_ids():
    a = sound()
    dup = attrs.evolve(_sub(a, "q3"), id="q2")
    problems = validate_structure(with_subs(a, _sub(a, "q1"), _sub(a, "q2"), dup))
    assert "sub-question id 'q2' is used twice" in problems


def test_non_tool_step_that_is_not_a_leaf():
    a = sound()
    q1 = attrs.evolve(_sub(a, "q1"), needs_tool=False, tool=None, call=None)
    problems = validate_structure(with_subs(a, q1, _sub(a, "q2"), _sub(a, "q3")))
    assert "non-tool sub-question 'q1' is not a leaf (needed by q2)" in problems


def test_tool_step_without_tool_or_call():
    a = sound()
    no_tool = attrs.evolve(_sub(a, "q1"), tool=None)
    problems = validate_structure(with_subs(a, no_tool, _sub(a, "q2"), _sub(a, "q3")))
    assert "sub-question 'q1' needs a tool but names none" in problems
    no_call = attrs.evolve(_sub(a, "q1"), call=None)
    arena = with_subs(a, no_call, _sub(a, "q2"), _sub(a, "q3"))
    assert "sub-question 'q1' has no verified call" in validate_structure(arena)
    assert validate_structure(arena, require_calls=False) == []


def test_call_to_another_tool_and_tool_not_offered():
    a = sound()
    wrong = attrs.evolve(_sub(a, "q1"), call=ToolCall("get_person_home_city", {}))
    problems = validate_structure(with_subs(a, wrong, _sub(a, "q2"), _sub(a, "q3")))
    assert any("its call is to 'get_person_home_city'" in p for p in problems)
    missing = attrs.evolve(_sub(a, "q1"), tool="get_ghost", call=ToolCall("get_ghost", {}))
    problems = validate_structure(with_subs(a, missing, _sub(a, "q2"), _sub(a, "q3")))
    assert "sub-question 'q1' needs tool 'get_ghost', which is not offered" in problems


def test_tools_without_code_duplicates_and_bad_distractors():
    a = sound()
    code = dict(a.tool_code)
    del code["get_team_home_city"]
    problems = validate_structure(attrs.evolve(a, tool_code=code, id="x"))
    assert "tool 'get_team_home_city' is offered but has no code" in problems
    twice = attrs.evolve(a, tools=(*a.tools, a.tools[0]), id="x")
    assert "tools offered twice: get_company_ceo" in validate_structure(twice)
    needed = attrs.evolve(a, distractors=("get_company_ceo", "get_nothing"), id="x")
    problems = validate_structure(needed)
    assert "distractor 'get_company_ceo' is needed by a sub-question" in problems
    assert "distractor 'get_nothing' is not among the offered tools" in problems


def test_tool_code_must_be_standard_library_and_define_the_tool():
    assert code_problems("f", "import json\nfrom collections import deque\ndef f(): pass") == []
    assert code_problems("f", "import requests\ndef f(): pass") == [
        "tool 'f': imports 'requests', not in the standard library"
    ]
    assert code_problems("f", "from numpy.linalg import norm\ndef f(): pass") == [
        "tool 'f': imports 'numpy.linalg', not in the standard library"
    ]
    assert code_problems("f", "def g(): pass") == [
        "tool 'f': code defines no top-level function 'f'"
    ]
    assert code_problems("f", "def f(:")[0].startswith("tool 'f': code does not parse")
    a = sound()
    code = {**a.tool_code, "get_company_ceo": "import yaml\n" + a.tool_code["get_company_ceo"]}
    problems = validate_structure(attrs.evolve(a, tool_code=code, id="x"))
    assert "tool 'get_company_ceo': imports 'yaml', not in the standard library" in problems


def test_declared_topology_must_match():
    a = sound()
    problems = validate_structure(attrs.evolve(a, topology="parallel-single", id="x"))
    assert "topology is declared 'parallel-single' but the structure is 'multi'" in problems
    single = attrs.evolve(a, topology="single", id="x")
    assert validate_structure(single, check_topology=False) == []


def _s(sid: str, *deps: str, tool: bool = True) -> SubQuestion:
    return SubQuestion(sid, sid, sid, deps, tool)


@pytest.mark.parametrize(
    ("subs", "expected"),
    [
        ((_s("a"),), "single"),
        ((_s("a"), _s("leaf", "a", tool=False)), "single"),
        ((_s("a"), _s("b"), _s("c")), "parallel-single"),
        ((_s("a"), _s("b"), _s("leaf", "a", "b", tool=False)), "parallel-single"),
        ((_s("a"), _s("b", "a"), _s("c", "b")), "multi"),
        ((_s("a"), _s("b", "a"), _s("c"), _s("d", "c")), "parallel-multi"),
        ((_s("a"), _s("b"), _s("c", "a", "b")), "parallel-multi"),
        ((_s("a"), _s("b", "a"), _s("c", "a")), "parallel-multi"),
        ((_s("leaf", tool=False),), None),
    ],
)
def test_topology_of(subs: tuple[SubQuestion, ...], expected: str | None):
    assert topology_of(subs) == expected
    assert decomposition_problems(subs) == []
