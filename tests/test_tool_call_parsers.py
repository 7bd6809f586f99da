"""Tool-call parsers: Hermes/Qwen <tool_call> blocks and bare JSON lists. Malformed output is an
error entry, never an exception; format() output parses back to the same calls."""

from __future__ import annotations

import random
import string
from typing import Any

import pytest
from astra_tool_call_parsers import HermesParser, JSONCallsParser
from astra_tool_call_parsers.options import HermesOptions

from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.protocols import ParsedTurn, ToolCallParser
from astra_core.records import ToolCall
from astra_core.registry import ComponentBuilder


@pytest.fixture(scope="module")
def builder() -> ComponentBuilder:
    return ComponentBuilder(load_plugins().registry)


def test_parsers_are_registered_and_satisfy_the_protocol(builder: ComponentBuilder) -> None:
    for name, cls in (("hermes", HermesParser), ("json", JSONCallsParser)):
        parser = builder.build("tool_call_parser", name)
        assert isinstance(parser, cls) and isinstance(parser, ToolCallParser)
        assert builder.registry.get("tool_call_parser", name).plugin == "tool-call-parsers"
    strict = builder.build("tool_call_parser", ComponentSpec("hermes", {"accept_unclosed": True}))
    assert strict.options.accept_unclosed


# --- hermes ------------------------------------------------------------------------------------

hermes = HermesParser()


def test_plain_text_is_content() -> None:
    assert hermes.parse("  The answer is 42.\n") == ParsedTurn("The answer is 42.")


def test_calls_and_the_prose_around_them() -> None:
    text = (
        "Let me look that up.\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}\n'
        "</tool_call>\n"
        '<tool_call>{"arguments": {}, "name": "now"}</tool_call>\nThen I will answer.'
    )
    turn = hermes.parse(text)
    assert turn.calls == (
        ToolCall("get_weather", {"city": "Paris", "days": 2}),
        ToolCall("now", {}),
    )
    assert turn.content == "Let me look that up.\nThen I will answer."
    assert turn.errors == ()


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("{not json}", "malformed JSON"),
        ('{"arguments": {"a": 1}}', 'non-empty string "name"'),
        ('{"name": "", "arguments": {}}', 'non-empty string "name"'),
        ('{"name": 3, "arguments": {}}', 'non-empty string "name"'),
        ('{"name": "f", "arguments": [1, 2]}', "\"arguments\" of 'f' must be a JSON object"),
        ('{"name": "f", "arguments": "x=1"}', "is a string that is not JSON"),
        ('"just a string"', "must be a JSON object"),
        ('{"name": "f"} and more', "text after the JSON object"),
        ("[]", "empty list"),
    ],
)
def test_malformed_blocks_become_errors_and_the_good_calls_survive(
    block: str, message: str
) -> None:
    text = f'Hi <tool_call>{block}</tool_call> <tool_call>{{"name": "ok"}}</tool_call> bye'
    turn = hermes.parse(text)
    assert turn.calls == (ToolCall("ok", {}),)
    assert len(turn.errors) == 1 and message in turn.errors[0], turn.errors
    assert turn.content == "Hi\nbye"


def test_lenient_forms_are_read() -> None:
    # missing or null arguments: no arguments; "parameters" alias; double-encoded arguments
    turn = hermes.parse(
        '<tool_call>{"name": "a"}</tool_call>'
        '<tool_call>{"name": "b", "arguments": null}</tool_call>'
        '<tool_call>{"name": "c", "parameters": {"x": 1}}</tool_call>'
        '<tool_call>{"name": "d", "arguments": "{\\"y\\": [1]}"}</tool_call>'
        '<tool_call>[{"name": "e"}, {"name": "f", "arguments": {"z": null}}]</tool_call>'
    )
    assert turn.errors == ()
    assert [(c.name, c.arguments) for c in turn.calls] == [
        ("a", {}), ("b", {}), ("c", {"x": 1}), ("d", {"y": [1]}), ("e", {}), ("f", {"z": None}),
    ]  # fmt: skip
    strict = HermesParser(HermesOptions(string_arguments=False))
    assert (
        "must be a JSON object"
        in strict.parse('<tool_call>{"name": "d", "arguments": "{}"}</tool_call>').errors[0]
    )


def test_an_unclosed_final_block_is_an_error_unless_accepted() -> None:
    text = 'Calling.\n<tool_call>\n{"name": "f", "arguments": {"q": 1}}\n'
    turn = hermes.parse(text)
    assert turn.calls == () and turn.content == "Calling."
    assert turn.errors[0].startswith("unclosed <tool_call> block")
    lenient = HermesParser(HermesOptions(accept_unclosed=True)).parse(text)
    assert lenient.calls == (ToolCall("f", {"q": 1}),) and lenient.errors == ()
    # truncated JSON stays an error even when unclosed blocks are accepted
    cut = HermesParser(HermesOptions(accept_unclosed=True)).parse('<tool_call>{"name": "f", "ar')
    assert cut.calls == () and "unclosed" in cut.errors[0] and "malformed JSON" in cut.errors[0]


def test_an_unclosed_block_followed_by_another_block() -> None:
    turn = hermes.parse('<tool_call>{"name": "a" <tool_call>{"name": "b"}</tool_call>')
    assert turn.calls == (ToolCall("b", {}),)
    assert len(turn.errors) == 1 and "unclosed" in turn.errors[0]


def test_stray_end_tags_and_kept_malformed_text() -> None:
    turn = hermes.parse("done </tool_call>")
    assert turn.content == "done" and "stray </tool_call>" in turn.errors[0]
    keep = HermesParser(HermesOptions(keep_malformed_in_content=True))
    turn = keep.parse("a <tool_call>{oops}</tool_call> b")
    assert turn.content == "a\n<tool_call>{oops}</tool_call>\nb" and len(turn.errors) == 1


def test_tags_inside_argument_strings_do_not_split_a_block() -> None:
    call = ToolCall("echo", {"text": "see </tool_call> and <tool_call> here"})
    text = f'<tool_call>{{"name": "echo", "arguments": {{"text": "{call.arguments["text"]}"}}}}</tool_call>'  # noqa: E501
    assert hermes.parse(text) == ParsedTurn("", (call,), ())


def test_format_writes_one_block_per_call() -> None:
    text = hermes.format([ToolCall("f", {"a": "é"}), ToolCall("g")])
    assert text == (
        '<tool_call>\n{"name": "f", "arguments": {"a": "é"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "g", "arguments": {}}\n</tool_call>'
    )
    assert hermes.format([]) == ""
    with pytest.raises(ValueError, match="'f' has arguments that are not JSON"):
        hermes.format([ToolCall("f", {"s": {1, 2}})])


def test_parsing_never_raises_on_garbage() -> None:
    rng = random.Random(7)
    pieces = ["<tool_call>", "</tool_call>", "{", "}", '"name"', ":", '"f"', "[", "]", ",", " ",
              '"arguments"', "null", "1", "\\", '"', "\n", "x"]  # fmt: skip
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(30)))
        turn = hermes.parse(text)
        assert isinstance(turn, ParsedTurn)
        assert all(isinstance(c, ToolCall) and isinstance(c.arguments, dict) for c in turn.calls)


# --- round trip over generated calls -----------------------------------------------------------

_CHARS = string.ascii_letters + string.digits + " _-.:/\\\"'{}[]<>\n\té中🙂"
_TRICKY = ["<tool_call>", "</tool_call>", "```", '{"name": "x"}', "\u2028", ""]


def _text(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return rng.choice(_TRICKY)
    return "".join(rng.choice(_CHARS) for _ in range(rng.randrange(12)))


def _value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(8 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randrange(-(10**12), 10**12)
    if kind == 3:
        return rng.uniform(-1e6, 1e6)
    if kind in (4, 5):
        return _text(rng)
    if kind == 6:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {_text(rng): _value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _calls(rng: random.Random) -> list[ToolCall]:
    calls = []
    for _ in range(rng.randrange(5)):
        name = _text(rng) or "f"
        if not name.strip():
            name = "f" + name
        calls.append(ToolCall(name, {_text(rng): _value(rng, 1) for _ in range(rng.randrange(4))}))
    return calls


@pytest.mark.parametrize("parser", [HermesParser(), JSONCallsParser()], ids=["hermes", "json"])
def test_parse_reads_back_exactly_what_format_wrote(parser: Any) -> None:
    rng = random.Random(2024)
    for _ in range(500):
        calls = _calls(rng)
        turn = parser.parse(parser.format(calls))
        assert turn == ParsedTurn("", tuple(calls), ()), calls
        # with prose before the calls, the prose comes back as the content
        prose = "I will call the tools now: step 1."
        turn = parser.parse(prose + "\n" + parser.format(calls))
        assert turn.calls == tuple(calls) and turn.content == prose and turn.errors == ()


# --- json --------------------------------------------------------------------------------------

json_parser = JSONCallsParser()


def test_json_list_object_fence_and_prose() -> None:
    assert json_parser.parse('[{"name": "f", "arguments": {"a": 1}}]').calls == (
        ToolCall("f", {"a": 1}),
    )
    assert json_parser.parse('{"name": "g"}').calls == (ToolCall("g", {}),)
    fenced = json_parser.parse('Sure.\n```json\n[{"name": "h", "arguments": {}}]\n```')
    assert fenced == ParsedTurn("Sure.", (ToolCall("h", {}),), ())
    prose = json_parser.parse('I call [x] first: [{"name": "k"}]')
    assert prose == ParsedTurn("I call [x] first:", (ToolCall("k", {}),), ())
    assert json_parser.parse("[]") == ParsedTurn("")


def test_json_answers_that_are_not_calls_stay_content() -> None:
    assert json_parser.parse('{"answer": 42}') == ParsedTurn('{"answer": 42}')
    assert json_parser.parse("The list is [1, 2, 3]") == ParsedTurn("The list is [1, 2, 3]")


def test_json_malformed_calls_are_errors() -> None:
    turn = json_parser.parse('[{"name": "f", "arguments": {"a": ')
    assert turn.calls == () and "malformed JSON tool calls" in turn.errors[0]
    turn = json_parser.parse('[{"name": "f", "arguments": 3}, {"name": "g"}]')
    assert turn.calls == (ToolCall("g", {}),)
    assert turn.errors == ("call 0: \"arguments\" of 'f' must be a JSON object, got a number",)
