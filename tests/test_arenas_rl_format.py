"""Import/export of the authors' released RL format (ASTRA-RL-1k) and JSON round trips."""

from __future__ import annotations

import json

import pytest
from astra_arenas.rl_format import (
    arena_from_rl_row,
    arena_to_rl_row,
    read_rl_jsonl,
    write_rl_jsonl,
)
from test_arenas_structure import sound

from astra_core.arena_structure import validate_structure
from astra_core.errors import RecordError
from astra_core.records import Arena
from astra_core.sandbox_policy import llm_written

RESERVATION_CODE = '''import json


def reservation_finder(passenger_name: str) -> str:
    """Find a reservation by passenger name."""
    records = {"asha verma": "RES987654", "li wei": "RES111222"}
    key = str(passenger_name).strip().lower()
    if key not in records:
        return json.dumps({"error": "no reservation"})
    return "Reservation ID: " + records[key]
'''

BAGGAGE_CODE = '''def baggage_fee_calculator(reservation_id: str, extra_kg: int) -> str:
    """Extra baggage charge for a reservation."""
    if not isinstance(extra_kg, int) or extra_kg < 0:
        return "Error: extra_kg must be a non-negative integer"
    return "Extra charge: \\u20b9" + str(extra_kg * 60)
'''

WEATHER_CODE = """def city_weather(city: str) -> str:
    return "sunny in " + city
"""


def tool(name: str, description: str, props: dict) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": props, "required": list(props)},
        },
    }


def released_row() -> dict:
    """A row in the shape of HF Emperorizzis/ASTRA-RL-1k (three fields are JSON strings)."""
    background = {"background": "Asha Verma flies tomorrow with 10 kg of extra baggage."}
    tools = [
        tool(
            "reservation_finder",
            "Find a reservation by passenger name.",
            {"passenger_name": {"type": "string", "description": "Full name."}},
        ),
        tool(
            "baggage_fee_calculator",
            "Extra baggage charge.",
            {"reservation_id": {"type": "string"}, "extra_kg": {"type": "integer"}},
        ),
        tool("city_weather", "Weather of a city.", {"city": {"type": "string"}}),
    ]
    return {
        "prompt": [
            {
                "role": "user",
                "content": "## some information related to the user\n"
                + json.dumps(background)
                + "\nWhat will Asha Verma pay for her extra baggage?",
            }
        ],
        "tool_schema": json.dumps(tools),
        "tool_dict": json.dumps(
            {
                "reservation_finder": RESERVATION_CODE,
                "baggage_fee_calculator": BAGGAGE_CODE,
                "city_weather": WEATHER_CODE,
            }
        ),
        "sub_qa_dict": json.dumps(
            {
                "reservation_finder": ["Reservation ID: RES987654"],
                "baggage_fee_calculator": ["Extra charge: ₹600"],
            },
            ensure_ascii=False,
        ),
    }


def decoded(row: dict) -> dict:
    return {k: json.loads(v) if isinstance(v, str) else v for k, v in row.items()}


def test_import_of_a_released_row():
    arena = arena_from_rl_row(released_row())
    assert arena.question.endswith("What will Asha Verma pay for her extra baggage?")
    assert [(s.tool, s.answer) for s in arena.subquestions] == [
        ("reservation_finder", "Reservation ID: RES987654"),
        ("baggage_fee_calculator", "Extra charge: ₹600"),
    ]
    assert arena.distractors == ("city_weather",)
    assert arena.topology == "parallel-single"
    assert arena.metadata["dependencies_known"] is False
    assert llm_written(arena)  # the authors' tools were written by an LLM: untrusted code
    assert validate_structure(arena, require_calls=False, check_topology=False) == []


def test_released_row_round_trips_through_an_arena():
    row = released_row()
    again = arena_to_rl_row(arena_from_rl_row(row), with_astra=False)
    assert set(again) == {"prompt", "tool_schema", "tool_dict", "sub_qa_dict"}
    assert all(isinstance(again[k], str) for k in ("tool_schema", "tool_dict", "sub_qa_dict"))
    assert decoded(again) == decoded(row)


def test_decoded_fields_are_accepted_too():
    assert arena_from_rl_row(decoded(released_row())) == arena_from_rl_row(released_row())


def test_arena_round_trip_is_exact_with_the_astra_field():
    arena = sound()
    row = arena_to_rl_row(arena)
    back = arena_from_rl_row(json.loads(json.dumps(row)))
    assert back == arena
    assert back.id == arena.id
    plain = arena_from_rl_row(arena_to_rl_row(arena, with_astra=False))
    assert [s.answer for s in plain.subquestions] == [s.answer for s in arena.needed]
    assert plain.tool_code == arena.tool_code and plain.distractors == arena.distractors


def test_arena_json_round_trip():
    arena = sound()
    assert Arena.from_json(arena.to_json()) == arena


def test_duplicate_tool_names_keep_the_first():
    row = decoded(released_row())
    row["tool_schema"] = [*row["tool_schema"], row["tool_schema"][0]]
    arena = arena_from_rl_row(row)
    assert arena.tool_names.count("reservation_finder") == 1
    assert arena.metadata["duplicate_tools"] == ["reservation_finder"]


def test_malformed_rows_name_the_problem(tmp_path):
    row = released_row()
    del row["sub_qa_dict"]
    with pytest.raises(RecordError, match="no 'sub_qa_dict' field"):
        arena_from_rl_row(row)
    bad = released_row() | {"tool_dict": "{not json"}
    with pytest.raises(RecordError, match="'tool_dict' is not valid JSON"):
        arena_from_rl_row(bad)
    tampered = arena_to_rl_row(sound())
    tampered["sub_qa_dict"] = json.dumps({"get_company_ceo": ["someone else"]})
    with pytest.raises(RecordError, match="disagrees"):
        arena_from_rl_row(tampered)
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"prompt": []}) + "\n")
    with pytest.raises(RecordError, match=r"rows.jsonl:1"):
        list(read_rl_jsonl(path))


def test_jsonl_files(tmp_path):
    arenas = [sound(), arena_from_rl_row(released_row())]
    path = tmp_path / "rl.jsonl"
    assert write_rl_jsonl(arenas, path) == 2
    assert list(read_rl_jsonl(path)) == arenas
