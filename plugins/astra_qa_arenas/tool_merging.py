"""The ``llm-merger`` step: tools of sub-questions with the same intent become one (paper §2.2.4).

The LLM groups the tool sub-questions by intent. Per group of two or more, the first member's
tool is the base; every other member is inserted in turn: the LLM extends the base code's mock
data and writes a call of the merged tool for every member so far, and after each insertion
every one of those calls is re-run in the sandbox and must print its member's answer. A group
gets ``merge_tries`` answers in all; a group that cannot pass drops the instance
(``merge-failed``). Tools left with one name but different code drop it too (``name-clash``).
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from astra_core.arena_structure import code_problems
from astra_core.arena_synthesis import QAInstance, ToolEnvironment
from astra_core.arena_verification import GoldCheck, call_statement, run_checks
from astra_core.errors import StepRejected
from astra_core.llm_json import MalformedAnswer
from astra_core.protocols import LLMBackend, Sandbox
from astra_core.registry import ComponentBuilder
from astra_core.sandbox_policy import require_isolation
from astra_qa_arenas.call_statements import CallProblem, parse_call
from astra_qa_arenas.llm_calls import ask_json
from astra_qa_arenas.options import ToolMergerOptions
from astra_qa_arenas.prompts import (
    MERGE_CLUSTERS,
    MERGE_CLUSTERS_SCHEMA,
    MERGE_FEEDBACK,
    MERGE_INSERT,
    MERGE_INSERT_SCHEMA,
    fill,
    messages,
)
from astra_qa_arenas.tool_writing import tail

STEP = "merge"


def name_clashes(tools: dict[str, ToolEnvironment]) -> list[str]:
    """Tool names that stand for different code."""
    code: dict[str, set[str]] = {}
    for env in tools.values():
        code.setdefault(env.name, set()).add(env.code)
    return sorted(name for name, versions in code.items() if len(versions) > 1)


class LLMToolMerger:
    """``merge(instance, tools, llm, sandbox) -> tools``; see the module docstring."""

    step = "tool_merger"

    def __init__(self, options: ToolMergerOptions, builder: ComponentBuilder | None = None) -> None:
        self.options = options

    def clusters(
        self, instance: QAInstance, tools: dict[str, ToolEnvironment], llm: LLMBackend
    ) -> list[list[str]]:
        ids = list(tools)

        def partition(answer: Any) -> None:
            seen: list[str] = []
            for cluster in answer["clusters"]:
                for uid in cluster["_uuids"]:
                    if str(uid) not in ids:
                        raise MalformedAnswer(
                            f"{STEP}: _uuid {uid} is not a tool sub-question {ids}"
                        )
                    if str(uid) in seen:
                        raise MalformedAnswer(f"{STEP}: _uuid {uid} is in two groups")
                    seen.append(str(uid))

        steps = "\n".join(
            f"{sid}. {instance.sub(sid).question} -> {instance.sub(sid).answer}; tool "
            f"{json.dumps(env.schema['function'], ensure_ascii=False)}"
            for sid, env in tools.items()
        )
        answer = ask_json(
            llm,
            messages(fill(MERGE_CLUSTERS, question=instance.question, steps=steps)),
            schema=MERGE_CLUSTERS_SCHEMA,
            step=STEP,
            check=partition,
        )
        groups = [[str(u) for u in c["_uuids"]] for c in answer["clusters"] if c["_uuids"]]
        grouped = {u for g in groups for u in g}
        return groups + [[sid] for sid in ids if sid not in grouped]

    def merge_group(
        self,
        instance: QAInstance,
        group: list[str],
        tools: dict[str, ToolEnvironment],
        llm: LLMBackend,
        sandbox: Sandbox,
    ) -> dict[str, ToolEnvironment]:
        o = self.options
        base = tools[group[0]]
        name, schema = base.name, base.schema
        merged = {group[0]: base}
        code = base.code
        tries = 0
        for member in group[1:]:
            sq = instance.sub(member)
            feedback = ""
            while True:
                if tries >= o.merge_tries:
                    raise StepRejected(
                        "merge-failed",
                        f"group {group}: inserting {member} failed {o.merge_tries} times; "
                        f"last: {feedback.splitlines()[0] if feedback else 'none'}",
                    )
                tries += 1
                calls_text = "\n".join(
                    f"{sid}: {env.statement} -> {instance.sub(sid).answer}"
                    for sid, env in merged.items()
                )
                prompt = fill(
                    MERGE_INSERT,
                    tool=json.dumps(schema["function"], ensure_ascii=False, indent=1),
                    code=code,
                    calls=calls_text,
                    main_question=instance.question,
                    member_id=member,
                    question=sq.question,
                    answer=sq.answer,
                    member_code=tools[member].code,
                    member_call=tools[member].statement,
                    feedback=feedback,
                )
                try:
                    answer = ask_json(llm, messages(prompt), schema=MERGE_INSERT_SCHEMA, step=STEP)
                except StepRejected as exc:
                    feedback = fill(MERGE_FEEDBACK, reason=exc.detail, output="(none)", code=code)
                    continue
                members = [*merged, member]
                candidate = str(answer["function"])
                try:
                    envs = self.verify(
                        instance, members, name, schema, candidate, answer["calls"], sandbox
                    )
                except CallProblem as exc:
                    feedback = fill(
                        MERGE_FEEDBACK, reason=str(exc), output="(none)", code=candidate
                    )
                    continue
                if isinstance(envs, str):
                    reason, output = envs.split("\n", 1)
                    feedback = fill(MERGE_FEEDBACK, reason=reason, output=output, code=candidate)
                    continue
                merged, code = envs, candidate
                break
        return merged

    def verify(
        self,
        instance: QAInstance,
        members: list[str],
        name: str,
        schema: dict[str, Any],
        code: str,
        statements: dict[str, str],
        sandbox: Sandbox,
    ) -> dict[str, ToolEnvironment] | str:
        """The merged environments, or "reason\\noutput" when a call does not pass."""
        problems = code_problems(name, code)
        if problems:
            return "; ".join(problems) + "\n(none)"
        calls = {}
        for sid in members:
            if sid not in statements:
                raise CallProblem(f"no call statement for sub-question {sid}")
            calls[sid] = parse_call(statements[sid], schema)
        require_isolation(sandbox, what=f"LLM-written merged tool code of instance {instance.id}")
        checks = [GoldCheck(sid, name, calls[sid], instance.sub(sid).answer) for sid in members]
        results = run_checks(sandbox, {name: code}, checks, timeout_s=self.options.timeout_s)
        failed = [r for r in results if not r.passed]
        if failed:
            first = failed[0]
            return f"the call of sub-question {first.key} failed: {first.reason}\n" + tail(
                first.output, self.options.max_output_chars
            )
        return {
            r.key: ToolEnvironment(
                sub_id=r.key,
                schema=schema,
                code=code,
                statement=call_statement(r.call),
                call=r.call,
                output=r.output,
            )
            for r in results
        }

    def merge(
        self,
        instance: QAInstance,
        tools: dict[str, ToolEnvironment],
        llm: LLMBackend,
        sandbox: Sandbox,
    ) -> dict[str, ToolEnvironment]:
        out = dict(tools)
        if self.options.merge and len(tools) > 1:
            for group in self.clusters(instance, tools, llm):
                if len(group) > 1:
                    merged = self.merge_group(instance, group, tools, llm, sandbox)
                    for sid, env in merged.items():
                        out[sid] = attrs.evolve(env, attempts=tools[sid].attempts)
        clashes = name_clashes(out)
        if clashes:
            raise StepRejected(
                "name-clash",
                f"tools named {', '.join(clashes)} have different code and were not merged",
            )
        return out
