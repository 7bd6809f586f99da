"""The share of call arguments copied from what the episode had seen (``copied_args``)."""

from __future__ import annotations

import json

from astra_training.grounding import copied_arguments


def call(name: str, **arguments: object) -> dict[str, object]:
    return {"type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def test_exact_copies_count_and_near_copies_do_not() -> None:
    messages = [
        {"role": "system", "content": "Answer with the tools. get_company_ceo(company_name)"},
        {"role": "user", "content": "Who is the CEO of Qul Motors, and of Dy Labs?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                call("get_company_ceo", company_name="Qul Motors"),  # copied
                call("get_company_ceo", company_name="Dyn Labs"),  # a near-copy
            ],
        },
        {"role": "tool", "content": '{"company_name": "Qul Motors", "ceo": "Su Le"}'},
        {"role": "tool", "content": '{"error": "no company with that name in the records"}'},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                call("get_person_birth_year", person_name="Su Le", options={"tags": ["Dy Labs"]}),
                {"type": "function", "function": {"name": "x", "arguments": "{not json"}},
                call("get_company_ceo", company_name="get_company_ceo"),  # only in the system turn
            ],
        },
        {"role": "tool", "content": '{"person_name": "Su Le", "birth_year": 1980}'},
        {"role": "assistant", "content": "The answer is Su Le."},
    ]
    # Qul Motors (question), Su Le (tool output), Dy Labs (nested, question) of five strings
    assert copied_arguments(messages) == (3, 5)
    # a name counts only once it has been seen: the output that holds it came after the call
    early = [messages[0], {"role": "assistant", "tool_calls": [call("f", a="Su Le")]}, messages[3]]
    assert copied_arguments(early) == (0, 1)
    assert copied_arguments(messages[:2]) == (0, 0)
