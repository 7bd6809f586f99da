"""Training conversations: reading OpenAI-messages JSONL and trajectories, normalisation.

``make_conversations`` (realistic tool-calling conversations: single, parallel and chained
calls with tool responses) is shared by the other ``test_training*`` files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from astra_training.conversations import (
    from_trajectories,
    normalize_messages,
    read_jsonl,
    write_jsonl,
)

from astra_core.errors import RecordError
from astra_core.records import Task, Trajectory


def _tool(name: str, description: str, **params: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {k: {"type": v} for k, v in params.items()},
                "required": list(params),
            },
        },
    }


TOOLS = [
    _tool("get_weather", "Current weather of a city.", city="string"),
    _tool("get_population", "Population of a city.", city="string"),
    _tool(
        "convert_currency", "Convert an amount.", amount="number", source="string", target="string"
    ),
    _tool("get_capital", "Capital city of a country.", country="string"),
]
CITIES = ["Paris", "Lima", "Oslo", "Cairo", "Hanoi", "Quito", "Perth", "Dakar", "Riga", "Bern"]
COUNTRIES = {"France": "Paris", "Peru": "Lima", "Norway": "Oslo", "Egypt": "Cairo"}
SYSTEM = "You are a helpful assistant that uses tools to answer questions."


def _call(i: int, name: str, **arguments: Any) -> dict[str, Any]:
    return {
        "id": f"call_{i}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def _result(i: int, name: str, content: Any) -> dict[str, Any]:
    return {
        "role": "tool",
        "tool_call_id": f"call_{i}",
        "name": name,
        "content": json.dumps(content),
    }


def make_conversation(rng: random.Random) -> dict[str, Any]:
    """One conversation: a single call, two parallel calls, or a two-step chain."""
    kind = rng.choice(["single", "parallel", "chain", "currency"])
    msgs: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    if kind == "single":
        city, temp = rng.choice(CITIES), rng.randint(-5, 35)
        msgs += [
            {"role": "user", "content": f"What is the weather in {city}?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [_call(1, "get_weather", city=city)],
            },
            _result(1, "get_weather", {"city": city, "temperature_c": temp}),
            {"role": "assistant", "content": f"It is {temp} degrees Celsius in {city}."},
        ]
    elif kind == "parallel":
        a, b = rng.sample(CITIES, 2)
        pa, pb = rng.randint(1, 9) * 100_000, rng.randint(1, 9) * 100_000
        msgs += [
            {"role": "user", "content": f"Which has more people, {a} or {b}?"},
            {
                "role": "assistant",
                "content": "Let me look up both populations.",
                "tool_calls": [
                    _call(1, "get_population", city=a),
                    _call(2, "get_population", city=b),
                ],
            },
            _result(1, "get_population", {"population": pa}),
            _result(2, "get_population", {"population": pb}),
            {"role": "assistant", "content": f"{a if pa >= pb else b} has more people."},
        ]
    elif kind == "chain":
        country = rng.choice(list(COUNTRIES))
        capital, temp = COUNTRIES[country], rng.randint(-5, 35)
        msgs += [
            {"role": "user", "content": f"How warm is it in the capital of {country}?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [_call(1, "get_capital", country=country)],
            },
            _result(1, "get_capital", {"capital": capital}),
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [_call(2, "get_weather", city=capital)],
            },
            _result(2, "get_weather", {"city": capital, "temperature_c": temp}),
            {"role": "assistant", "content": f"It is {temp} degrees in {capital}."},
        ]
    else:
        amount = rng.randint(1, 500)
        rate = rng.choice([0.9, 1.1, 150.0])
        msgs += [
            {"role": "user", "content": f"Convert {amount} USD to EUR."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    _call(1, "convert_currency", amount=amount, source="USD", target="EUR")
                ],
            },
            _result(1, "convert_currency", {"result": round(amount * rate, 2)}),
            {"role": "assistant", "content": f"{amount} USD is {round(amount * rate, 2)} EUR."},
        ]
    return {"messages": msgs, "tools": TOOLS}


def make_conversations(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [make_conversation(rng) for _ in range(n)]


def write_conversations(path: Path, n: int, seed: int = 0) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for row in make_conversations(n, seed):
            fh.write(json.dumps(row) + "\n")
    return path


# ---------------------------------------------------------------------------------------------


def test_read_jsonl_normalises_messages(tmp_path: Path) -> None:
    path = write_conversations(tmp_path / "data.jsonl", 20)
    convs = list(read_jsonl(path))
    assert len(convs) == 20
    for conv in convs:
        assert conv.tools and conv.source.startswith(str(path))
        for m in conv.messages:
            assert isinstance(m["content"], str)  # None became ""
    # the files we write read back the same
    assert write_jsonl(convs, tmp_path / "again.jsonl") == 20
    assert [c.messages for c in read_jsonl(tmp_path / "again.jsonl")] == [c.messages for c in convs]


def test_system_prompt_added_only_when_missing() -> None:
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    out = normalize_messages(msgs, "x", system_prompt="Be brief.")
    assert out[0] == {"role": "system", "content": "Be brief."}
    again = normalize_messages(list(out), "x", system_prompt="Other")
    assert again[0]["content"] == "Be brief."


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"role": "user", "content": "hi"}], "no assistant message"),
        ([{"role": "robot", "content": "hi"}], "role 'robot'"),
        (
            [
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"function": {"name": "f", "arguments": "{not json"}}],
                }
            ],
            "not JSON",
        ),
    ],
)
def test_bad_conversations_name_the_line(tmp_path: Path, messages: list, error: str) -> None:
    path = tmp_path / "bad.jsonl"
    good = make_conversations(1)[0]
    path.write_text(json.dumps(good) + "\n" + json.dumps({"messages": messages}) + "\n")
    with pytest.raises(RecordError, match=error) as info:
        list(read_jsonl(path))
    assert f"{path}:2" in str(info.value)


def test_only_ok_trajectories_are_read() -> None:
    row = make_conversations(1)[0]
    task = Task(query="q", server_id="s")
    ok = Trajectory(messages=tuple(row["messages"]), tools=tuple(row["tools"]), task=task)
    failed = Trajectory(
        messages=tuple(row["messages"]), tools=tuple(row["tools"]), task=task, status="failed"
    )
    convs, skipped = from_trajectories([ok, failed, ok])
    assert len(convs) == 2 and skipped == 1
    assert convs[0].source == f"trajectory {ok.id}"
