"""The prompts of ``qa-llm`` and the JSON Schemas of their answers.

Written after the intent of the authors' prompts (paper Appendix Examples 3-4, the released
``env_synthesis`` prompts): each asks for one JSON value, says what each field means and what
makes an answer acceptable. The first line of every user message names the task
(``# Task: ...``), so a recorded answer can be matched to its prompt.
"""

from __future__ import annotations

import re
from typing import Any

SYSTEM = (
    "You build verifiable reinforcement-learning environments for tool-using agents. You answer "
    "with exactly one JSON value in the format the task asks for, with no text around it."
)

RETRY = (
    "Your answer could not be used: {error}\n"
    "Answer the same task again with only the JSON value, in the requested format."
)

# -- decomposition (paper Appendix Example 3) ---------------------------------------------------

_DECOMPOSE_RULES = """\
Scenario types (choose the one the question has):
- "Single-Hop": one atomic lookup answers the question.
- "Parallel Single-Hop": several independent lookups, none needs another's answer.
- "Multi-Hop": a chain; each sub-question needs the answer of the one before it.
- "Parallel Multi-Hop": independent branches, at least one of them a chain (or a step that
  joins the answers of several earlier ones).

Rules:
1. Each sub_question is solvable by ONE call of a single atomic API tool (a lookup, a search, a
   calculation a service performs); it names every value the call needs, taking values that come
   from earlier steps from their sub_answer.
2. sub_answer holds only the result (a name, a number with its unit, a date, an id), never an
   explanation. Take answers from the knowledge corpus when it has them; otherwise synthesize
   specific, plausible data (dates, amounts, names, ids) and stay consistent across steps.
3. "dependency" lists the _uuid of every sub-question whose answer this one needs; null for a
   root. Every listed dependency must really be needed: do not serialize independent steps.
4. A step that only evaluates, summarizes, recommends, ranks, compares or reformats answers
   (no tool can do it) may appear only as a last step that nothing depends on.
5. hop_level is 1 for roots and 1 + the highest hop_level of its dependencies otherwise;
   is_parallel is true when the step can run at the same time as another step.
6. final_answer answers main_question from the sub-answers."""

_DECOMPOSE_FORMAT = """\
Answer with one JSON object:
{"scenario_type": "Single-Hop" | "Parallel Single-Hop" | "Multi-Hop" | "Parallel Multi-Hop",
 "main_question": "...", "final_answer": "...",
 "decomposition_trace": [{"_uuid": 1, "hop_level": 1, "sub_question": "...",
   "is_parallel": false, "dependency": null, "sub_answer": "..."}, ...]}"""

DECOMPOSE_QUESTION = (
    "# Task: decompose a question into atomic sub-questions\n\n"
    "Domain: {domain}\n"
    "Knowledge corpus:\n{context}\n\n"
    "Main question: {question}\n"
    "{answer_line}\n"
    "Decompose the main question into the atomic sub-questions a tool-using agent would answer "
    "to solve it, with their answers and dependencies. Keep main_question as given.\n\n"
    f"{_DECOMPOSE_RULES}\n\n{_DECOMPOSE_FORMAT}"
)

DECOMPOSE_UNCONDITIONAL = (
    "# Task: write a multi-hop question and decompose it\n\n"
    "Domain: {domain}\n"
    "Knowledge corpus:\n{context}\n\n"
    "Min_Num_Hops: {min_hops}\nMax_Num_Hops: {max_hops}\n\n"
    "Write one realistic user question grounded in the knowledge corpus whose solution needs "
    "between Min_Num_Hops and Max_Num_Hops sub-questions (a Single-Hop question needs one), "
    "then decompose it.\n\n"
    f"{_DECOMPOSE_RULES}\n\n{_DECOMPOSE_FORMAT}"
)

DECOMPOSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["scenario_type", "main_question", "final_answer", "decomposition_trace"],
    "properties": {
        "scenario_type": {
            "enum": ["Single-Hop", "Parallel Single-Hop", "Multi-Hop", "Parallel Multi-Hop"]
        },
        "main_question": {"type": "string", "minLength": 1},
        "final_answer": {"type": ["string", "number"]},
        "decomposition_trace": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["_uuid", "sub_question", "sub_answer"],
                "properties": {
                    "_uuid": {"type": ["integer", "string"]},
                    "hop_level": {"type": "integer"},
                    "sub_question": {"type": "string", "minLength": 1},
                    "is_parallel": {"type": "boolean"},
                    "dependency": {
                        "anyOf": [
                            {"type": "null"},
                            {"type": ["integer", "string"]},
                            {"type": "array", "items": {"type": ["integer", "string"]}},
                        ]
                    },
                    "sub_answer": {"type": ["string", "number"]},
                },
            },
        },
    },
}

# -- tool necessity -----------------------------------------------------------------------------

NECESSITY = (
    "# Task: decide which sub-questions need a tool\n\n"
    "Main question: {question}\n"
    "Sub-questions:\n{steps}\n\n"
    "For each sub-question decide whether answering it needs a call to an external tool or "
    "service (a lookup, a search, a booking system, a measurement, a calculation a service "
    "performs): tool_necessity true. Purely linguistic steps (evaluating, summarizing, "
    "recommending, advising, ranking, matching, reformatting answers already known) need no "
    "tool: tool_necessity false.\n\n"
    'Answer with one JSON array, one entry per sub-question in the same order: [{{"_uuid": 1, '
    '"tool_necessity": true, "reason": "..."}}, ...]'
)

NECESSITY_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["_uuid", "tool_necessity"],
        "properties": {
            "_uuid": {"type": ["integer", "string"]},
            "tool_necessity": {"type": "boolean"},
            "reason": {"type": "string"},
        },
    },
}

# -- the four quality scores --------------------------------------------------------------------

QUALITY = (
    "# Task: judge the quality of a decomposition\n\n"
    "Main question: {question}\nFinal answer: {answer}\n"
    "Sub-questions (with the ids they depend on):\n{steps}\n\n"
    "Score each sub-question 1 or 0 on:\n"
    "- dependency_consistency: every dependency it lists is semantically and logically "
    "necessary (a root with no dependency scores 1);\n"
    "- atomicity: it is indivisible, one tool call answers it;\n"
    "- sequential_rationality: it runs only once its dependencies are answered and is not a "
    "superfluous step added to force serialization or to reach a hop count.\n"
    "And the whole decomposition on task_completeness: 1 if the sub-answers suffice to answer "
    "the main question, else 0.\n\n"
    'Answer with one JSON object: {{"dependency_consistency": {{"1": 1, ...}}, "atomicity": '
    '{{"1": 1, ...}}, "sequential_rationality": {{"1": 1, ...}}, "task_completeness": 1, '
    '"reason": "..."}} with a key per sub-question id.'
)

_PER_STEP = {"type": "object", "additionalProperties": {"enum": [0, 1]}}
QUALITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "dependency_consistency",
        "atomicity",
        "sequential_rationality",
        "task_completeness",
    ],
    "properties": {
        "dependency_consistency": _PER_STEP,
        "atomicity": _PER_STEP,
        "sequential_rationality": _PER_STEP,
        "task_completeness": {"enum": [0, 1]},
        "reason": {"type": "string"},
    },
}

# -- environment synthesis (paper Appendix Example 4) -------------------------------------------

_TOOL_FORMAT = (
    '{{"name": "snake_case_name", "description": "...", "parameters": {{"type": "object", '
    '"properties": {{"arg": {{"type": "string", "description": "..."}}}}, "required": ["arg"]}}}}'
)

TOOL_DOCUMENT = (
    "# Task: write the document of a tool\n\n"
    "Sub-question: {question}\nIts answer: {answer}\n\n"
    "Write the document of one general, reusable API tool that answers questions like this "
    "one: its name (snake_case, a verb and an object), what it does, its input parameters (a "
    "JSON Schema object) and what it returns. Parameters take the values the question states; "
    "examples in descriptions must not be the values of this question or its answer.\n\n"
    f'Answer with one JSON object: {{{{"analysis": "...", "tool": {_TOOL_FORMAT}}}}}'
)

TOOL_SCALING = (
    "# Task: scale up the complexity of a tool document\n\n"
    "Tool document:\n{tool}\n\n"
    "Make the tool more realistic: add optional parameters a real service would have and "
    "widen enumerations and value spaces. Stay backward compatible: keep the name and every "
    "existing parameter with its meaning; new parameters are optional.\n\n"
    'Answer with one JSON object: {{"analysis": "...", "refined_version": {{...the tool '
    "document in the same format...}}}}"
)

TOOL_CALL = (
    "# Task: write the call of a tool\n\n"
    "Question: {question}\n\nTool document:\n{tool}\n\n"
    "Write the Python call statement that answers the question with this tool, e.g. "
    "tool_name(arg='value', n=3). Use keyword arguments, literal values only, and take every "
    "value from the question.\n\n"
    'Answer with one JSON object: {{"analysis": "...", "call": "tool_name(...)"}}'
)

TOOL_CODE = (
    "# Task: implement a tool in Python\n\n"
    "Question: {question}\nExpected answer: {answer}\n\n"
    "Tool document:\n{tool}\n\nCall statement: {call}\n\n"
    "Implement the tool as one Python function with exactly the document's name and "
    "parameters. Requirements:\n"
    "- only Python 3 standard-library imports;\n"
    "- the data it serves is mock data held in the code; for the call statement the returned "
    "value must contain the expected answer verbatim as a substring, and the result must be "
    "the same every time (no randomness, no clock);\n"
    "- defensive error handling: check types, missing and invalid parameters, unknown keys, "
    "and return a stable error message instead of raising;\n"
    "- it may return extra fields a real service would, as a JSON string or a dict.\n\n"
    'Answer with one JSON object: {{"analysis": "...", "function": "def tool_name(...):\\n '
    '   ..."}}'
)

TOOL_REPAIR = (
    "# Task: repair a tool that failed verification\n\n"
    "Question: {question}\nExpected answer: {answer}\n\n"
    "Tool document:\n{tool}\n\nCall statement: {call}\n\nCode:\n{code}\n\n"
    "Running the code followed by print(<call statement>) in the sandbox failed: {reason}\n"
    "Output (stdout and traceback):\n{output}\n\n"
    "Fix the call statement and/or the code so that the printed result contains the expected "
    "answer verbatim. Keep the document's name and parameters and the requirements: standard "
    "library only, deterministic, defensive errors.\n\n"
    'Answer with one JSON object: {{"analysis": "...", "call": "tool_name(...)", "function": '
    '"def tool_name(...):\\n    ..."}}'
)

TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "description", "parameters"],
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "description": {"type": "string"},
        "parameters": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"const": "object"}, "properties": {"type": "object"}},
        },
    },
}
DOCUMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["tool"],
    "properties": {"tool": TOOL_SCHEMA},
}
SCALING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["refined_version"],
    "properties": {"refined_version": TOOL_SCHEMA},
}
CALL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["call"],
    "properties": {"call": {"type": "string", "minLength": 3}},
}
CODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["function"],
    "properties": {"function": {"type": "string", "minLength": 10}},
}
REPAIR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["call", "function"],
    "properties": {
        "call": {"type": "string", "minLength": 3},
        "function": {"type": "string", "minLength": 10},
    },
}

# -- merging (paper §2.2.4) ---------------------------------------------------------------------

MERGE_CLUSTERS = (
    "# Task: group tools with the same intent\n\n"
    "Main question: {question}\n"
    "Sub-questions and the tools written for them:\n{steps}\n\n"
    "Group the sub-questions whose tools do the same thing with different parameter values "
    "(same data source, same operation, same argument types, same kind of result), e.g. the "
    "weather of two cities. A sub-question with no such partner is a group of its own.\n\n"
    'Answer with one JSON object: {{"clusters": [{{"intent_summary": "...", "_uuids": [1, 3], '
    '"reason": "..."}}, ...]}}'
)

MERGE_CLUSTERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["clusters"],
    "properties": {
        "clusters": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["_uuids"],
                "properties": {
                    "intent_summary": {"type": "string"},
                    "_uuids": {"type": "array", "items": {"type": ["integer", "string"]}},
                    "reason": {"type": "string"},
                },
            },
        }
    },
}

MERGE_INSERT = (
    "# Task: merge a tool into another by extending its data\n\n"
    "Main question: {main_question}\n\n"
    "Tool document:\n{tool}\n\nCurrent code:\n{code}\n\n"
    "Calls it must keep answering (call -> expected answer):\n{calls}\n\n"
    "Insert sub-question {member_id} into the tool:\n"
    "Question: {question}\nExpected answer: {answer}\n"
    "Its own tool was:\n{member_code}\nwith the call {member_call}\n\n"
    "{feedback}"
    "Extend the mock data of the current code (do not change the name or the parameters) so "
    "that it also answers the new sub-question, and write a call statement of this tool for "
    "every sub-question, the new one included. Standard library only, deterministic.\n\n"
    'Answer with one JSON object: {{"analysis": "...", "function": "def ...", "calls": '
    '{{"<_uuid>": "tool_name(...)", ...}}}}'
)

MERGE_INSERT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["function", "calls"],
    "properties": {
        "function": {"type": "string", "minLength": 10},
        "calls": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

MERGE_FEEDBACK = (
    "Your previous merge failed verification: {reason}\nOutput:\n{output}\n"
    "Previous code:\n{code}\n\n"
)

_FIELD = re.compile(r"\{(\w+)\}")


def fill(template: str, **values: object) -> str:
    """``template`` with ``{name}`` replaced by ``values`` (in one pass, so inserted text is
    never rewritten) and ``{{``/``}}`` read as literal braces."""
    text = template.replace("{{", "{").replace("}}", "}")
    return _FIELD.sub(
        lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text
    )


def messages(user: str) -> list[dict[str, str]]:
    """The chat of one step: the shared system message and the step's prompt."""
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
