"""Trajectories as rows of the authors' released SFT format (``Emperorizzis/ASTRA-SFT-1k``), the
inverse of ``astra_sft_import``.

A row holds ``query_info`` (the task), ``mcp_info`` (a JSON string: the server's
``group_info``, its ``tool_list`` and a ``call_info``), ``graph``, ``chain_info`` (the chain
the task was written for) and ``trajectory`` (a JSON string of Qwen-Agent messages, see
``to_qwen_agent``). What the format has no place for (the record's id, status, scores, reward,
metadata, the original call ids, and any message or tool detail the Qwen-Agent shape drops) goes
into an ``astra`` field, a JSON string that readers of the release ignore and that makes the
import of an export give back the same ``Trajectory``; its digest of the conversation and tools
makes a row edited after the export an error rather than a record passed off as the original.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from astra_core.records import JSONDict, Trajectory, content_id
from astra_sft_data.qwen_agent_messages import from_qwen_agent, to_qwen_agent
from astra_sft_data.released_tools import openai_tool

EXTRA_FIELD = "astra"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def conversation_digest(messages: Sequence[JSONDict], tools: Sequence[JSONDict]) -> str:
    """A content id of a conversation and its tools: a row edited after its export no longer
    matches the digest its extra field recorded."""
    return content_id("conversation", list(messages), list(tools))


def call_ids(messages: Sequence[JSONDict]) -> list[str]:
    """The ids of every tool call, in order."""
    return [str(c.get("id")) for m in messages for c in (m.get("tool_calls") or ())]


def with_call_ids(messages: Sequence[JSONDict], ids: Sequence[str]) -> list[JSONDict]:
    """``messages`` (as ``from_qwen_agent`` numbers them) with the calls' ids put back."""
    renamed = dict(zip(call_ids(messages), ids, strict=False))
    out: list[JSONDict] = []
    for message in messages:
        copy = dict(message)
        if copy.get("tool_calls"):
            copy["tool_calls"] = [
                {**c, "id": renamed.get(c["id"], c["id"])} for c in copy["tool_calls"]
            ]
        if copy.get("role") == "tool" and copy.get("tool_call_id") in renamed:
            copy["tool_call_id"] = renamed[copy["tool_call_id"]]
        out.append(copy)
    return out


def bare_tool(tool: JSONDict) -> JSONDict:
    """A ``tool_list`` entry: the OpenAI tool's function, without the wrapper."""
    return dict(tool.get("function", tool))


def released_fields(traj: Trajectory) -> JSONDict:
    """The five fields of a released row for ``traj``."""
    task = traj.task
    meta = traj.metadata
    chain = meta.get("chain")
    chain = [str(t) for t in chain] if isinstance(chain, list) else []
    augmented: JSONDict = (
        {"mode": task.augmentation, "augmented_question": task.query} if task.augmentation else {}
    )
    group = {
        "server_title": str(meta.get("server") or ""),
        "server_name": str(meta.get("server_name") or meta.get("server") or ""),
        "server_description": str(meta.get("server_description") or ""),
        "domain": str(meta.get("domain") or ""),
    }
    return {
        "query_info": {
            "have_plan": task.origin == "chain",
            "mode": "single_server",
            "target_tools": list(task.target_tools),
            "generated_question": task.query,
            "augmented_query_info": augmented,
            "query_score_info": {"quality_scores": dict(task.scores)},
        },
        "mcp_info": _dumps(
            {
                "base_info": {
                    "group_info": group,
                    "tool_list": [bare_tool(t) for t in traj.tools],
                },
                "call_info": {"mock_tool": True} if meta.get("tool_backend") == "emulated" else {},
            }
        ),
        "graph": {"sub_chains": [chain]} if chain else {},
        "chain_info": {"sub_chain": chain},
        "trajectory": _dumps(to_qwen_agent(traj.messages)),
    }


def trajectory_to_row(traj: Trajectory, *, with_astra: bool = True) -> JSONDict:
    """The released row for ``traj``, plus the ``astra`` field unless ``with_astra=False``."""
    row = released_fields(traj)
    if not with_astra:
        return row
    record = traj.to_dict()
    messages, tools = record.pop("messages"), record.pop("tools")
    # Only what the released fields do not give back exactly travels in the extra field.
    rebuilt = with_call_ids(from_qwen_agent(json.loads(row["trajectory"])), call_ids(messages))
    if rebuilt == messages:
        record["call_ids"] = call_ids(messages)
    else:
        record["messages"] = messages
    if [openai_tool(bare_tool(t), "", "") for t in tools] != tools:
        record["tools"] = tools
    record["digest"] = conversation_digest(messages, tools)
    row[EXTRA_FIELD] = _dumps(record)
    return row
