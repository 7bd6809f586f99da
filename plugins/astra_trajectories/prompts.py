"""Every prompt of the LLM pipeline, with the JSON Schema its answer must satisfy.

The texts follow the authors' prompts (graph detection, chain vote, back-translation, query
generation from a plan or from the tools, the three augmentations, the quality check, the mock
tool and the seven judges) in spirit, shortened, and all ask for JSON (the authors mix JSON and
XML) so that one reader checks every answer (``llm_answers.parse_answer``). Each builder returns
OpenAI chat messages; the same inputs always give the same messages, so the response cache
recognises a request it has already paid for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from astra_core.records import JSONDict, ToolServer
from astra_core.tool_schemas import tool_returns

JSON_ONLY = "Answer with JSON only, no other text."
HALF_STEPS = [0, 0.5, 1]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _messages(system: str, user: str) -> list[JSONDict]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def server_block(server: ToolServer) -> str:
    """The server as the LLM sees it: title, domain, description, one JSON line per tool (with
    its output schema when the server documents one)."""
    returns = tool_returns(server)
    lines = [f"Server: {server.title}"]
    if server.domain:
        lines.append(f"Domain: {server.domain}")
    if server.description:
        lines.append(f"Description: {server.description}")
    lines.append("Tools (one JSON object per line):")
    for tool in server.tools:
        fn = tool["function"]
        entry: JSONDict = {
            "name": fn["name"],
            "description": fn.get("description", ""),
            "parameters": fn.get("parameters") or {"type": "object", "properties": {}},
        }
        if fn["name"] in returns:
            entry["returns"] = returns[fn["name"]]
        lines.append(_dumps(entry))
    return "\n".join(lines)


def chain_text(tools: Sequence[str]) -> str:
    return " -> ".join(tools)


# -- step 1: (task, chain) proposals -----------------------------------------------------------

CHAIN_PROPOSAL_SCHEMA: JSONDict = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "dependent": {"enum": ["yes", "no", "not sure"]},
            "chain": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "task": {"type": "string"},
        },
        "required": ["dependent", "chain"],
    },
}


def chain_proposal_messages(server: ToolServer, max_length: int) -> list[JSONDict]:
    return _messages(
        "You find dependency relationships between the tools of one server. " + JSON_ONLY,
        f"{server_block(server)}\n\n"
        "List chains of these tools that one realistic task would call in order. Two tools are "
        "dependent when the first must run before the second (the first finds or creates data, "
        "the second reads or changes it); they are not dependent when both can be called "
        f"directly. A chain has 2 to {max_length} tools, uses only the names above and stays "
        'within this server. For each chain say whether it is dependent ("yes", "no", or '
        '"not sure" when you cannot tell: do not guess) and give the task that needs it.\n'
        'Answer with a JSON array: [{"dependent": "yes", "chain": ["tool_a", "tool_b"], '
        '"task": "..."}]',
    )


# -- step 3: chain verification ----------------------------------------------------------------

CHAIN_VOTE_SCHEMA: JSONDict = {
    "type": "object",
    "properties": {
        "reason": {"type": "string"},
        "is_valid": {"type": "boolean"},
        "user_query": {"type": "string"},
        "task_plan": {"type": "string"},
    },
    "required": ["is_valid"],
}


def chain_vote_messages(server: ToolServer, tools: Sequence[str]) -> list[JSONDict]:
    return _messages(
        "You check whether a tool chain can form a reasonable task. " + JSON_ONLY,
        f"{server_block(server)}\n\nTool chain, called in this order: {chain_text(tools)}\n\n"
        "Would one realistic user request need exactly these tools in this order, with every "
        "required argument coming from the request or from what earlier calls return? If so, "
        "write that request and a short plan.\n"
        'Answer with a JSON object: {"reason": "...", "is_valid": true, "user_query": "...", '
        '"task_plan": "..."}',
    )


QUERY_FROM_CHAIN_SCHEMA: JSONDict = {
    "type": "object",
    "properties": {"valid": {"type": "boolean"}, "query": {"type": "string"}},
    "required": ["valid", "query"],
}


def query_from_chain_messages(server: ToolServer, tools: Sequence[str]) -> list[JSONDict]:
    return _messages(
        "You write the request a user would make to an assistant that has some tools. " + JSON_ONLY,
        f"{server_block(server)}\n\nTool chain, called in this order: {chain_text(tools)}\n\n"
        "Write one user request whose solution needs exactly these tools in this order. Do not "
        "name the tools. If no sensible request needs them, set valid to false.\n"
        'Answer with a JSON object: {"valid": true, "query": "..."}',
    )


CHAIN_FROM_QUERY_SCHEMA: JSONDict = {
    "type": "object",
    "properties": {
        "plan": {"type": "string"},
        "chain": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["chain"],
}


def chain_from_query_messages(server: ToolServer, query: str) -> list[JSONDict]:
    return _messages(
        "You plan which tools an assistant must call to fulfil a request. " + JSON_ONLY,
        f"{server_block(server)}\n\nUser request: {query}\n\n"
        "Plan the calls that fulfil the request with the tools above, then list every tool "
        "call in order (a tool called twice appears twice).\n"
        'Answer with a JSON object: {"plan": "...", "chain": ["tool_a", "tool_b"]}',
    )


# -- step 4: tasks -----------------------------------------------------------------------------

CHAIN_TASKS_SCHEMA: JSONDict = {
    "type": "object",
    "properties": {
        "tasks": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {"query": {"type": "string", "minLength": 1}},
                "required": ["query"],
            },
        }
    },
    "required": ["tasks"],
}

SERVER_TASKS_SCHEMA: JSONDict = {
    "type": "object",
    "properties": {
        "tasks": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "minLength": 1},
                    "target_tools": {
                        "type": "array",
                        "items": {"type": "string"},
                        "minItems": 1,
                    },
                },
                "required": ["query", "target_tools"],
            },
        }
    },
    "required": ["tasks"],
}

_TASK_RULES = (
    "Write as a real user would: self-contained, specific, one paragraph. State every value "
    "the first calls need (names, dates, places, amounts) but never name a tool, and never "
    "state ids or data that a tool would return."
)


def chain_tasks_messages(server: ToolServer, tools: Sequence[str], count: int) -> list[JSONDict]:
    return _messages(
        "You write realistic user requests for an assistant that has tools. " + JSON_ONLY,
        f"{server_block(server)}\n\nTool execution chain: {chain_text(tools)}\n\n"
        f"Write {count} distinct user request(s) whose solution calls exactly these "
        f"{len(tools)} tools in this order, each later call using what an earlier one "
        f"returned. {_TASK_RULES}\n"
        'Answer with a JSON object: {"tasks": [{"query": "..."}]}',
    )


def server_tasks_messages(server: ToolServer, num_tools: int, count: int) -> list[JSONDict]:
    return _messages(
        "You write realistic user requests for an assistant that has tools. " + JSON_ONLY,
        f"{server_block(server)}\n\n"
        f"Write {count} distinct user request(s), each needing {num_tools} of these tools "
        f"used together, and list those tools in the order they would be called. {_TASK_RULES}"
        "\n"
        'Answer with a JSON object: {"tasks": [{"query": "...", "target_tools": ["tool_a", '
        '"tool_b"]}]}',
    )


VARIATIONS_SCHEMA: JSONDict = {
    "type": "object",
    "properties": {
        "variations": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "minLength": 1},
        }
    },
    "required": ["variations"],
}

_AUGMENT_INSTRUCTIONS = {
    "paraphrase": "with other wording, preference expressions or context; the intent, every "
    "fact and value, and the language stay the same",
    "complexity": "adding realistic requirements (several constraints, an implicit reference, "
    "a follow-up need) while the core goal, every value and the language stay the same; it "
    "must still be solvable with these tools: {tools}",
    "persona": "as this user would write it: {persona}. The intent, every value and the "
    "language stay the same",
}


def augmentation_messages(
    mode: str, query: str, count: int, *, tools: Sequence[str] = (), persona: str = ""
) -> list[JSONDict]:
    how = _AUGMENT_INSTRUCTIONS[mode].format(tools=", ".join(tools), persona=persona)
    return _messages(
        "You rewrite user requests for an assistant that has tools. " + JSON_ONLY,
        f"Rewrite the user request below {count} time(s), {how}. Write each rewrite in the "
        "same language as the original.\n\n"
        f"Request: {query}\n\n"
        'Answer with a JSON object: {"variations": ["..."]}',
    )


def _rating(low: int, high: int) -> JSONDict:
    return {
        "type": "object",
        "properties": {
            "reason": {"type": "string"},
            "score": {"type": "number", "minimum": low, "maximum": high},
        },
        "required": ["score"],
    }


TASK_SCORE_SCHEMA: JSONDict = {
    "type": "object",
    "properties": {
        name: _rating(1, 5)
        for name in (
            "question_quality",
            "scenario_realism",
            "tool_necessity",
            "difficulty",
            "uniqueness",
        )
    },
    "required": [
        "question_quality",
        "scenario_realism",
        "tool_necessity",
        "difficulty",
        "uniqueness",
    ],
}


def task_score_messages(
    server: ToolServer, query: str, target_tools: Sequence[str]
) -> list[JSONDict]:
    return _messages(
        "You rate user requests written for a tool-using assistant. " + JSON_ONLY,
        f"{server_block(server)}\n\nUser request: {query}\n"
        f"Intended tools: {', '.join(target_tools)}\n\n"
        "Rate the request from 1 to 5 on each dimension, giving the reason before the score:\n"
        "- question_quality: clear, complete and realistic as a query (1 very poor, 5 "
        "excellent)\n"
        "- scenario_realism: the situation is authentic and plausible (1 unrealistic, 5 "
        "highly realistic)\n"
        "- tool_necessity: the tools are truly needed and the intended ones are the right "
        "choice (1 answerable without tools, 5 impossible without them)\n"
        "- difficulty: how hard it is to choose the right tools (1 very easy, 5 very hard)\n"
        "- uniqueness: how uniquely the intended tools fit the request (1 many other ways, 5 "
        "only these)\n"
        'Answer with a JSON object: {"question_quality": {"reason": "...", "score": 4}, '
        '"scenario_realism": {...}, "tool_necessity": {...}, "difficulty": {...}, '
        '"uniqueness": {...}}',
    )


# -- the tool emulator -------------------------------------------------------------------------

EMULATOR_SCHEMA: JSONDict = {
    "type": "object",
    "properties": {"status": {"enum": ["success", "error"]}, "output": {}},
    "required": ["status", "output"],
}


def emulator_messages(
    server: ToolServer,
    tool: Mapping[str, Any],
    arguments: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    task: str | None,
) -> list[JSONDict]:
    fn = tool["function"]
    about = f" ({server.description})" if server.description else ""
    parts = [f"Tool definition: {_dumps(fn)}"]
    returns = tool_returns(server).get(fn["name"])
    if returns:
        parts.append(f"Output schema: {_dumps(returns)}")
    if history:
        parts.append("Earlier calls in this session, oldest first (stay consistent with them):")
        parts += [_dumps(dict(h)) for h in history]
    if task:
        parts.append(f"The user's request in this session: {task}")
    parts.append(f"Call: {fn['name']}({_dumps(dict(arguments))})")
    return _messages(
        f"You play the tool {fn['name']} of the server {server.title}{about}. Return what the "
        "real tool would return for the call: realistic, specific and consistent with earlier "
        "outputs (ids, names, amounts). Do not always succeed: when the arguments name "
        "something that does not exist or make no sense, return an empty result or an error "
        "as the real service would. "
        + JSON_ONLY
        + ' Format: {"status": "success" or "error", "output": <the tool\'s return value>}',
        "\n".join(parts),
    )


# -- step 6: the trajectory judge --------------------------------------------------------------

_HALF = {"enum": HALF_STEPS}
TURN_JUDGE_SCHEMA: JSONDict = {
    "type": "object",
    "properties": {"reason": {"type": "string"}, "understanding": _HALF, "planning": _HALF},
    "required": ["understanding", "planning"],
}
CONCISENESS_SCHEMA: JSONDict = {
    "type": "object",
    "properties": {
        "calls": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer", "minimum": 1},
                    "reason": {"type": "string"},
                    "score": {"enum": [0, 1]},
                },
                "required": ["index", "score"],
            },
        }
    },
    "required": ["calls"],
}
FINAL_ANSWER_SCHEMA: JSONDict = {
    "type": "object",
    "properties": {"reason": {"type": "string"}, "correlation": _HALF, "summary": _HALF},
    "required": ["correlation", "summary"],
}

_JUDGE_SYSTEM = (
    "You are a strict judge of conversations between a user and an assistant that calls "
    "tools. The conversation is shown without its system message; tool calls are numbered. "
    + JSON_ONLY
)


def _judge_messages(offered: str, conversation: str, task: str) -> list[JSONDict]:
    return _messages(
        _JUDGE_SYSTEM,
        f"Tools offered to the assistant:\n{offered}\n\nConversation:\n{conversation}\n\n{task}",
    )


def query_judge_messages(offered: str, conversation: str) -> list[JSONDict]:
    return _judge_messages(
        offered,
        conversation,
        "Rate the assistant's first turn (the last one shown):\n"
        "- understanding: 1 if it grasps what the user wants (goal, constraints, values), 0.5 "
        "partly, 0 not\n"
        "- planning: 1 if its plan and first calls are a sound route to the goal with the "
        "offered tools, 0.5 partly, 0 not\n"
        'Answer with a JSON object: {"reason": "...", "understanding": 1, "planning": 1}',
    )


def round_judge_messages(offered: str, conversation: str) -> list[JSONDict]:
    return _judge_messages(
        offered,
        conversation,
        "Rate the assistant's last turn shown, which follows tool responses:\n"
        "- understanding: 1 if it reads those responses correctly (uses the returned ids and "
        "values, notices errors and empty results), 0.5 partly, 0 if it misreads or ignores "
        "them or repeats a call that already succeeded\n"
        "- planning: 1 if its calls are the right next step given those responses, 0.5 "
        "partly, 0 not\n"
        'Answer with a JSON object: {"reason": "...", "understanding": 1, "planning": 1}',
    )


def conciseness_judge_messages(offered: str, conversation: str, calls: int) -> list[JSONDict]:
    return _judge_messages(
        offered,
        conversation,
        f"Score each of the {calls} tool calls: 1 if it is necessary and not redundant, 0 if "
        "it has hallucinated or malformed arguments, repeats a read whose data was already "
        "returned, retries something that cannot succeed, serves a different task than the "
        "user's, calls a tool that was not offered, or is made serially where the calls could "
        "have been made together in one turn. A retry after a transient error (timeout, "
        "service unavailable) is necessary.\n"
        'Answer with a JSON object: {"calls": [{"index": 1, "reason": "...", "score": 1}]} '
        "with one entry per call.",
    )


def final_answer_judge_messages(offered: str, conversation: str) -> list[JSONDict]:
    return _judge_messages(
        offered,
        conversation,
        "Rate the assistant's final answer (its last turn):\n"
        "- correlation: 1 if it answers what the user asked, in the user's language, 0.5 "
        "partly, 0 not\n"
        "- summary: 1 if it faithfully reports what the tools returned (no invented facts, "
        "errors stated honestly), 0.5 partly, 0 not\n"
        'Answer with a JSON object: {"reason": "...", "correlation": 1, "summary": 1}',
    )
