"""Import of the authors' released SFT data (``Emperorizzis/ASTRA-SFT-1k``) as ``Trajectory``s.

A row, as the reference notes describe it (``reference-code-notes.md`` §2.3 and §5): the
stage-3 output of the authors' pipeline,

* ``trajectory``: the conversation as a Qwen-Agent message list (or its JSON string);
* ``mcp_info``: the server (``base_info.group_info`` + ``base_info.tool_list``, ``call_info``),
  an object or its JSON string;
* ``query_info``: the task (``generated_question``, ``augmented_query_info``, ``target_tools``,
  ``have_plan``, ``query_score_info``);
* ``chain_info``: the sampled chain (``sub_chain``); ``graph``: the detected chains (unused).

The dataset card also lists ``messages`` and ``tools``: a row may carry OpenAI (or Qwen-Agent)
``messages`` instead of ``trajectory``, and ``tools`` instead of ``mcp_info``'s tool list. Only
the conversation and the tools are required; a row without them is an error naming the file,
the line and the missing field. Conversations the authors' agent ended with ``[ERROR: ...]``, and
(unless asked to keep them) conversations that fail ``validate_trajectory``, are dropped and
counted in the dataset's ``dropped.jsonl`` and manifest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from astra_core import row_files
from astra_core.errors import RecordError
from astra_core.records import JSONDict, Task, ToolChain, ToolServer, Trajectory, content_id
from astra_core.store import MANIFEST, RecordStore, now_iso, write_json_atomic
from astra_sft_data.astra_sft_export import (
    EXTRA_FIELD,
    bare_tool,
    conversation_digest,
    with_call_ids,
)
from astra_sft_data.qwen_agent_messages import (
    MessageFormatError,
    content_text,
    from_qwen_agent,
    is_qwen_agent,
    normalise_openai,
    to_qwen_agent,
)
from astra_sft_data.released_tools import SftImportError, openai_tool
from astra_sft_data.trajectory_checks import check_trajectory

FORMAT = "astra-sft"
ROW_FIELDS = (
    "an ASTRA-SFT-1k row holds query_info, mcp_info, graph, chain_info and trajectory "
    "(or messages and tools)"
)
SOURCE_ERROR = "source-error"


def read_rows(path: Path) -> Iterator[tuple[str, Any]]:
    """``(location, row)`` for every row of a JSONL, JSON or Parquet file (the core's reader,
    its errors as this import's)."""
    try:
        yield from row_files.read_rows(path, what="ASTRA-SFT rows")
    except RecordError as exc:
        raise SftImportError(str(exc)) from None


def _field(row: Mapping[str, Any], name: str, where: str, kind: type | tuple[type, ...]) -> Any:
    """``row[name]`` decoded when it is a JSON string (the dataset stores some fields so);
    ``None`` when absent; an error naming the field when it has the wrong shape."""
    value = row.get(name)
    if value is None:
        return None
    if isinstance(value, str) and kind is not str:
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise SftImportError(
                f"{where}: field {name!r} is a string but not valid JSON ({exc.msg})"
            ) from None
    if not isinstance(value, kind):
        kinds = (kind,) if isinstance(kind, type) else kind
        expected = " or ".join(k.__name__ for k in kinds)
        raise SftImportError(
            f"{where}: field {name!r} must be {expected}, got {type(value).__name__}"
        )
    return value


def _numbers(values: Any) -> dict[str, float]:
    if not isinstance(values, Mapping):
        return {}
    return {
        str(k): float(v)
        for k, v in values.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


@attrs.frozen
class ImportedRow:
    """A converted row: the trajectory, and the reason it is not usable (``None`` when it is)."""

    trajectory: Trajectory
    failure: str | None = None
    detail: str = ""


def row_to_trajectory(row: Any, where: str, *, keep_reasoning: bool = True) -> ImportedRow:
    """One ASTRA-SFT-1k row as a ``Trajectory`` (see the module docstring)."""
    if not isinstance(row, Mapping):
        raise SftImportError(f"{where}: a row must be a JSON object, got {type(row).__name__}")
    query_info = _field(row, "query_info", where, dict) or {}
    chain_info = _field(row, "chain_info", where, dict) or {}
    mcp_info = _field(row, "mcp_info", where, dict)

    # the conversation
    field = "trajectory" if row.get("trajectory") is not None else "messages"
    raw_messages = _field(row, field, where, list)
    if raw_messages is None:
        raise SftImportError(f"{where}: missing field 'trajectory' ({ROW_FIELDS})")
    try:
        if is_qwen_agent(raw_messages):
            messages = from_qwen_agent(raw_messages, keep_reasoning=keep_reasoning)
        else:
            messages = normalise_openai(raw_messages)
            if not keep_reasoning:
                for m in messages:
                    m.pop("reasoning_content", None)
    except MessageFormatError as exc:
        raise SftImportError(f"{where}: field {field!r}: {exc}") from None

    # the tools and the server
    base: Mapping[str, Any] = {}
    if mcp_info is not None:
        inner = mcp_info.get("base_info", mcp_info)
        base = inner if isinstance(inner, Mapping) else {}
    raw_tools = _field(row, "tools", where, list)
    tools_field = "tools"
    if raw_tools is None:
        if mcp_info is None:
            raise SftImportError(f"{where}: missing field 'mcp_info' (or 'tools'): {ROW_FIELDS}")
        raw_tools = base.get("tool_list")
        tools_field = "mcp_info.base_info.tool_list"
        if not isinstance(raw_tools, list):
            raise SftImportError(f"{where}: missing field {tools_field!r} (a list of tools)")
    tools = tuple(openai_tool(t, where, tools_field) for t in raw_tools)
    found_group = base.get("group_info")
    group: Mapping[str, Any] = found_group if isinstance(found_group, Mapping) else {}
    title = str(group.get("server_title") or group.get("server_name") or "imported server")
    server = ToolServer(
        title=title,
        tools=tools,
        description=str(group.get("server_description") or ""),
        domain=str(group.get("domain") or ""),
    )

    # the task
    chain = chain_info.get("sub_chain")
    chain = [str(t) for t in chain] if isinstance(chain, list) else []
    augmented = query_info.get("augmented_query_info")
    augmented = augmented if isinstance(augmented, Mapping) else {}
    first_user = next((m for m in messages if m.get("role") == "user"), None)
    query = (
        content_text(first_user.get("content"))
        if first_user is not None
        else str(augmented.get("augmented_question") or query_info.get("generated_question") or "")
    )
    from_chain = bool(chain) and query_info.get("have_plan", True) is not False
    target_tools = query_info.get("target_tools")
    score_info = query_info.get("query_score_info")
    task = Task(
        query=query,
        server_id=server.id,
        target_tools=tuple(str(t) for t in target_tools) if isinstance(target_tools, list) else (),
        origin="chain" if from_chain else "server",
        chain_id=ToolChain(server_id=server.id, tools=tuple(chain)).id if from_chain else None,
        augmentation=str(augmented["mode"]) if augmented.get("mode") else None,
        scores=_numbers(score_info.get("quality_scores"))
        if isinstance(score_info, Mapping)
        else {},
        metadata={"source": FORMAT},
    )

    extra = row.get(EXTRA_FIELD)
    if extra and keep_reasoning:
        return ImportedRow(_exact_trajectory(extra, messages, tools, where))

    call_info = mcp_info.get("call_info") if mcp_info is not None else None
    backend = "unknown"
    if isinstance(call_info, Mapping):
        backend = "emulated" if call_info.get("mock_tool") else "live"
    metadata: JSONDict = {
        "source": FORMAT,
        "source_row": where,
        "server_id": server.id,
        "server": title,
        "server_name": str(group.get("server_name") or ""),
        "server_description": server.description,
        "domain": server.domain,
        "chain": chain,
        "chain_length": len(chain),
        "tool_backend": backend,
    }
    failure = None
    detail = ""
    last = messages[-1] if messages else {}
    if last.get("role") == "assistant" and str(last.get("content", "")).startswith("[ERROR"):
        failure, detail = SOURCE_ERROR, str(last["content"])[:300]
        metadata["failure"] = failure
    trajectory = Trajectory(
        messages=tuple(messages),
        tools=tools,
        task=task,
        status="failed" if failure else "ok",
        metadata=metadata,
        # the id depends on the content only, not on where the file lies: a re-import of the
        # same rows (from anywhere) writes nothing new
        id=content_id(FORMAT, messages, tools, task.id),
    )
    return ImportedRow(trajectory, failure, detail)


def _exact_trajectory(
    extra: Any, messages: list[JSONDict], tools: tuple[JSONDict, ...], where: str
) -> Trajectory:
    """The trajectory an export wrote, from its row and the ``astra`` field; the row's
    conversation and tools must be the ones that trajectory exports to."""
    try:
        record = dict(json.loads(extra) if isinstance(extra, str) else extra)
        ids = record.pop("call_ids", None) or []
        digest = record.pop("digest", None)
        record.setdefault("messages", with_call_ids(messages, ids))
        record.setdefault("tools", list(tools))
        trajectory = Trajectory.from_dict(record)
    except Exception as exc:
        raise SftImportError(f"{where}: the {EXTRA_FIELD!r} field is malformed: {exc}") from None
    again = from_qwen_agent(to_qwen_agent(trajectory.messages))
    same_tools = [openai_tool(bare_tool(t), where, "tools") for t in trajectory.tools] == list(
        tools
    )
    same = digest == conversation_digest(trajectory.messages, trajectory.tools)
    if again != messages or not same_tools or not same:
        raise SftImportError(
            f"{where}: the row's {'tools' if not same_tools else 'trajectory'} disagree with "
            f"its {EXTRA_FIELD!r} field (edited after export?); drop that field to import the "
            "row as a released one"
        )
    return trajectory


@attrs.frozen
class ImportSummary:
    read: int
    written: int
    existing: int
    dropped: dict[str, int]
    out_dir: str


def import_astra_sft(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    keep_invalid: bool = False,
    keep_reasoning: bool = True,
    limit: int | None = None,
) -> ImportSummary:
    """Convert the rows of ``paths`` into a dataset directory like a stage's (``data-*.jsonl``,
    ``dropped.jsonl``, ``manifest.json``); re-running it adds only rows not yet there."""
    out = Path(out_dir)
    started = now_iso()
    read = 0
    with RecordStore(out, Trajectory) as store:
        existing = len(store)
        for path in paths:
            for where, row in read_rows(Path(path)):
                if limit is not None and read >= limit:
                    break
                read += 1
                imported = row_to_trajectory(row, where, keep_reasoning=keep_reasoning)
                traj = imported.trajectory
                if store.seen(traj.id):
                    continue
                if imported.failure:
                    store.drop(imported.failure, traj.id, f"{where}: {imported.detail}")
                    continue
                problems = [] if keep_invalid else check_trajectory(traj)
                if problems:
                    store.drop(f"invalid-{problems[0].kind}", traj.id, f"{where}: {problems[0]}")
                    continue
                store.write(traj)
        summary = ImportSummary(
            read=read,
            written=store.written,
            existing=existing,
            dropped=store.dropped_counts(),
            out_dir=str(out),
        )
    write_json_atomic(
        out / MANIFEST,
        {
            "stage": "import-sft",
            "status": "complete",
            "format": FORMAT,
            "sources": [str(Path(p).resolve()) for p in paths],
            "options": {"keep_invalid": keep_invalid, "keep_reasoning": keep_reasoning},
            "started_at": started,
            "ended_at": now_iso(),
            "counts": {
                "read": read,
                "written": summary.written,
                "existing": existing,
                "total": existing + summary.written,
            },
            "dropped": summary.dropped,
        },
    )
    return summary
