"""The ``subtask-f1`` verifier against hand computations, and its matchers."""

from __future__ import annotations

import pytest
from astra_arenas.matching import normalized_match, substring_match, tokens
from astra_arenas.options import SubtaskF1Options
from astra_arenas.verifier import SubtaskF1Verifier

from astra_core.errors import ConfigError
from astra_core.plugins import load_plugins
from astra_core.records import Arena, Episode, SubQuestion, ToolCall, ToolCallResult
from astra_core.registry import ComponentBuilder


def arena() -> Arena:
    """Three tool sub-questions and one non-tool leaf (which never counts)."""
    subs = (
        SubQuestion(
            "q1",
            "Who is the CEO of Zorvex Labs?",
            "Vel Tora",
            (),
            True,
            "get_company_ceo",
            ToolCall("get_company_ceo", {"company_name": "Zorvex Labs"}),
        ),
        SubQuestion(
            "q2",
            "Where does Vel Tora live?",
            "Quellar",
            ("q1",),
            True,
            "get_person_home_city",
            ToolCall("get_person_home_city", {"person_name": "Vel Tora"}),
        ),
        SubQuestion(
            "q3",
            "Population of Quellar?",
            "1,234,567",
            ("q2",),
            True,
            "get_city_population",
            ToolCall("get_city_population", {"city_name": "Quellar"}),
        ),
        SubQuestion("q4", "Is it above a million?", "yes", ("q3",), False),
    )
    return Arena(
        question="?", answer="yes", topology="multi", subquestions=subs, tools=(), tool_code={}
    )


def ok(name: str, output: str) -> ToolCallResult:
    return ToolCallResult(name, {}, output)


def err(name: str, output: str) -> ToolCallResult:
    return ToolCallResult(name, {}, output, error=True)


def test_f1_matches_hand_computation():
    calls = [
        ok("get_company_ceo", '{"company_name": "Zorvex Labs", "ceo": "Vel Tora"}'),
        ok("get_person_home_city", '{"home_city": "Quellar"}'),
        ok("get_weather", "sunny"),
        err("nope", "Error: unknown tool"),
    ]
    reward = SubtaskF1Verifier().score(arena(), Episode.of_calls(arena(), calls))
    # r = 2/3, p = 2/4; F1 = 2 * (1/2) * (2/3) / (1/2 + 2/3) = 4/7
    assert reward.recall == pytest.approx(2 / 3)
    assert reward.precision == pytest.approx(0.5)
    assert reward.value == pytest.approx(4 / 7)
    assert reward.solved == ("q1", "q2")
    assert reward.calls == 4
    assert reward.parts["needed"] == 3 and reward.parts["error_calls"] == 1


def test_call_credit_goes_to_the_calls_that_raised_recall():
    calls = [
        err("get_company_ceo", "Vel Tora"),  # failed: no credit even though it names the answer
        ok("get_company_ceo", '{"ceo": "Vel Tora"}'),
        ok("get_company_ceo", '{"ceo": "Vel Tora"}'),  # a repeat solves nothing new
        ok("get_weather", "sunny"),
        ok("get_city_population", "1,234,567"),
    ]
    verifier = SubtaskF1Verifier()
    assert verifier.call_credit(arena(), calls) == (0.0, 1.0, 0.0, 0.0, 1.0)
    assert verifier.call_credit(arena(), []) == ()
    # an output that answers two open sub-questions is one credited call; both are then solved
    both = [
        ok("get_person_home_city", '{"person_name": "Vel Tora", "home_city": "Quellar"}'),
        ok("get_company_ceo", '{"ceo": "Vel Tora"}'),
    ]
    assert verifier.call_credit(arena(), both) == (1.0, 0.0)
    strict = SubtaskF1Verifier(SubtaskF1Options(require_tool_match=True))
    assert strict.call_credit(arena(), [ok("get_weather", "Vel Tora")]) == (0.0,)


def test_all_solved_with_one_call_each_is_full_reward():
    calls = [ok("a", "Vel Tora"), ok("b", "Quellar"), ok("c", "population 1,234,567")]
    reward = SubtaskF1Verifier().score(arena(), Episode.of_calls(arena(), calls))
    assert reward.value == pytest.approx(1.0)
    assert reward.precision <= 1.0


def test_no_calls_and_no_hits_give_zero():
    verifier = SubtaskF1Verifier()
    assert verifier.score(arena(), Episode.of_calls(arena(), [])).value == 0.0
    zero = verifier.score(arena(), Episode.of_calls(arena(), [ok("a", "nothing useful")]))
    assert (zero.value, zero.recall, zero.precision, zero.calls) == (0.0, 0.0, 0.0, 1)


def test_error_calls_count_as_calls_but_never_solve():
    calls = [err("get_company_ceo", "Error: Vel Tora"), ok("get_company_ceo", "Vel Tora")]
    reward = SubtaskF1Verifier().score(arena(), Episode.of_calls(arena(), calls))
    # solved 1 of 3, 2 calls: r = 1/3, p = 1/2, F1 = 2 * (1/6) / (5/6) = 0.4
    assert reward.solved == ("q1",)
    assert reward.value == pytest.approx(0.4)
    assert reward.parts["error_calls"] == 1


def test_an_error_object_answer_is_an_error_call_that_never_solves():
    # a miscopied name: the tool answers, with an error that happens to echo the gold answer
    miss = ok("get_company_ceo", '{"error": "no company Vel Torx; did you mean Vel Tora?"}')
    reward = SubtaskF1Verifier().score(
        arena(), Episode.of_calls(arena(), [miss, ok("get_company_ceo", "Vel Tora")])
    )
    assert reward.solved == ("q1",) and reward.parts["error_calls"] == 1
    assert SubtaskF1Verifier().call_credit(arena(), [miss]) == (0.0,)


def test_a_sub_question_solved_twice_counts_once():
    calls = [ok("a", "Vel Tora"), ok("a", "Vel Tora again")]
    reward = SubtaskF1Verifier().score(arena(), Episode.of_calls(arena(), calls))
    # r = 1/3, p = 1/2
    assert reward.solved == ("q1",) and reward.value == pytest.approx(0.4)


def test_require_tool_match_ignores_outputs_of_other_tools():
    calls = [ok("get_weather", "Vel Tora"), ok("get_person_home_city", "Quellar")]
    loose = SubtaskF1Verifier().score(arena(), Episode.of_calls(arena(), calls))
    strict = SubtaskF1Verifier(SubtaskF1Options(require_tool_match=True)).score(
        arena(), Episode.of_calls(arena(), calls)
    )
    assert loose.solved == ("q1", "q2")
    assert strict.solved == ("q2",)


def test_normalized_matcher_in_the_verifier():
    calls = [ok("c", '{"population": 1234567}')]
    assert SubtaskF1Verifier().score(arena(), Episode.of_calls(arena(), calls)).solved == ()
    normalized = SubtaskF1Verifier(SubtaskF1Options(matcher="normalized"))
    assert normalized.score(arena(), Episode.of_calls(arena(), calls)).solved == ("q3",)


@pytest.mark.parametrize(
    ("gold", "output", "substring", "normalized"),
    [
        ("Quellar", '{"city": "Quellar"}', True, True),
        ("quellar", "QUELLAR", False, True),
        ("Vel  Tora", "ceo: Vel Tora", False, True),
        ("1,234", "total 1234 units", False, True),
        ("1234", "total 1,234 units", False, True),
        ("3.0", "value: 3", False, True),
        ("12.50", "price 12.5 USD", False, True),
        ("42", "born 1942", True, False),
        ("Tor", "Torvia", True, False),
        ("Vel Tora", "Vel Torani", True, False),
        ("Reservation ID: RES987654", "reservation id: res987654.", False, True),
        ("2,001", "2001", False, True),
        ("-5", "temperature -5 C", True, True),
        ("5", "temperature -5 C", True, False),
        ("", "anything", False, False),
    ],
)
def test_matchers(gold: str, output: str, substring: bool, normalized: bool):
    assert substring_match(gold, output) is substring
    assert normalized_match(gold, output) is normalized


def test_tokens_are_canonical():
    assert tokens("The Price: $1,234.50, was 3.0!") == ["the", "price", "1234.5", "was", "3"]


def test_registered_and_options_checked():
    builder = ComponentBuilder(load_plugins().registry)
    verifier = builder.build("verifier", "subtask-f1")
    assert verifier.score(arena(), Episode.of_calls(arena(), [ok("a", "Vel Tora")])).solved == (
        "q1",
    )
    from astra_core.options import ComponentSpec

    with pytest.raises(ConfigError, match="matcher"):
        builder.build("verifier", ComponentSpec("subtask-f1", {"matcher": "fuzzy"}))
