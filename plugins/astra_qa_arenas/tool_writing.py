"""The ``llm-tool-writer`` step: a verified Python tool for one sub-question (paper §2.2.3).

Per outer attempt (up to ``outer_retries``): the LLM writes the tool's document, scales it up
(extra optional parameters, wider enums; the name and existing parameters kept), writes the call
statement, then the code. Each code version is checked by rules (it parses, imports only the
standard library, defines the tool; the call is literal, names only the tool's parameters and
does not pass the answer itself) and then run in the sandbox as ``code`` followed by
``print(call)``: it is accepted only when the output contains the sub-answer verbatim. A version
that fails goes back to the LLM with the reason and the output (stdout and traceback) for a
repaired call and code, up to ``inner_retries`` versions per document. For a sub-question with
dependencies, their sub-questions and answers are given as "Additional Information".

The code is LLM-written, hence untrusted: the sandbox must isolate the host
(``astra_core.sandbox_policy.require_isolation``).
"""

from __future__ import annotations

import json
from typing import Any

from astra_core.arena_structure import code_problems
from astra_core.arena_synthesis import QAInstance, ToolEnvironment
from astra_core.arena_verification import GoldCheck, call_statement, run_checks
from astra_core.errors import StepRejected
from astra_core.llm_json import MalformedAnswer
from astra_core.protocols import LLMBackend, Sandbox
from astra_core.records import JSONDict
from astra_core.registry import ComponentBuilder
from astra_core.sandbox_policy import require_isolation
from astra_qa_arenas.call_statements import CallProblem, parse_call
from astra_qa_arenas.llm_calls import ask_json
from astra_qa_arenas.options import ToolWriterOptions
from astra_qa_arenas.prompts import (
    CALL_SCHEMA,
    CODE_SCHEMA,
    DOCUMENT_SCHEMA,
    REPAIR_SCHEMA,
    SCALING_SCHEMA,
    TOOL_CALL,
    TOOL_CODE,
    TOOL_DOCUMENT,
    TOOL_REPAIR,
    TOOL_SCALING,
    fill,
    messages,
)

STEP = "tool"
# Answers this short (a count, a yes) may legitimately appear among a call's arguments.
SHORT_ANSWER = 4


def openai_tool(document: JSONDict) -> JSONDict:
    """A tool document as an OpenAI tool schema."""
    return {
        "type": "function",
        "function": {
            "name": document["name"],
            "description": document.get("description", ""),
            "parameters": document["parameters"],
        },
    }


def question_with_context(instance: QAInstance, sub_id: str) -> str:
    """The sub-question, with its dependencies' sub-QAs as "Additional Information"."""
    sq = instance.sub(sub_id)
    if not sq.depends_on:
        return sq.question
    lines = [
        f"- {instance.sub(d).question} Answer: {instance.sub(d).answer}" for d in sq.depends_on
    ]
    return sq.question + "\n- Additional Information\n" + "\n".join(lines)


def tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "..." + text[-limit:]


class Failed(Exception):
    """One code version failed: ``reason`` and the ``output`` shown to the LLM."""

    def __init__(self, reason: str, output: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.output = output


class LLMToolWriter:
    """``write(instance, sub_id, llm, sandbox) -> ToolEnvironment``; see the module docstring."""

    step = "tool_writer"

    def __init__(self, options: ToolWriterOptions, builder: ComponentBuilder | None = None) -> None:
        self.options = options

    # -- one version ------------------------------------------------------------------------------

    def verify(
        self, schema: JSONDict, statement: str, code: str, answer: str, sandbox: Sandbox, what: str
    ) -> ToolEnvironment:
        """Check one (call, code) version by rules and in the sandbox; raises ``Failed``."""
        name = schema["function"]["name"]
        try:
            call = parse_call(statement, schema)
        except CallProblem as exc:
            raise Failed(str(exc)) from None
        if len(answer) >= SHORT_ANSWER and answer in call_statement(call):
            raise Failed(
                "the call passes the expected answer itself; the tool must find it in its data"
            )
        problems = code_problems(name, code)
        if problems:
            raise Failed("; ".join(problems))
        require_isolation(sandbox, what=what)
        result = run_checks(
            sandbox,
            {name: code},
            [GoldCheck(name, name, call, answer)],
            timeout_s=self.options.timeout_s,
        )[0]
        if not result.passed:
            raise Failed(result.reason, tail(result.output, self.options.max_output_chars))
        return ToolEnvironment(
            sub_id="",
            schema=schema,
            code=code,
            statement=call_statement(call),
            call=call,
            output=result.output,
        )

    # -- the step ---------------------------------------------------------------------------------

    def document(self, question: str, answer: str, llm: LLMBackend) -> JSONDict:
        """The tool document, scaled up when the options say so."""
        reply = ask_json(
            llm,
            messages(fill(TOOL_DOCUMENT, question=question, answer=answer)),
            schema=DOCUMENT_SCHEMA,
            step=STEP,
        )
        document: JSONDict = reply["tool"]
        if not self.options.complexity_scaling:
            return document

        def compatible(value: Any) -> None:
            refined = value["refined_version"]
            if refined["name"] != document["name"]:
                raise MalformedAnswer(
                    f"{STEP}: the refined version renames the tool to {refined['name']!r}; keep "
                    f"{document['name']!r}"
                )
            before = set(document["parameters"].get("properties") or {})
            after = set(refined["parameters"].get("properties") or {})
            if before - after:
                raise MalformedAnswer(
                    f"{STEP}: the refined version drops parameters {sorted(before - after)}"
                )

        scaled = ask_json(
            llm,
            messages(fill(TOOL_SCALING, tool=json.dumps(document, ensure_ascii=False, indent=1))),
            schema=SCALING_SCHEMA,
            step=STEP,
            check=compatible,
        )
        return scaled["refined_version"]

    def write(
        self, instance: QAInstance, sub_id: str, llm: LLMBackend, sandbox: Sandbox
    ) -> ToolEnvironment:
        o = self.options
        sq = instance.sub(sub_id)
        question = question_with_context(instance, sub_id)
        what = f"LLM-written tool code of instance {instance.id} sub-question {sub_id}"
        failures: list[str] = []
        versions = 0
        for _ in range(o.outer_retries):
            try:
                document = self.document(question, sq.answer, llm)
            except StepRejected as exc:
                failures.append(exc.detail)
                continue
            schema = openai_tool(document)
            tool_text = json.dumps(document, ensure_ascii=False, indent=1)
            try:
                statement = ask_json(
                    llm,
                    messages(fill(TOOL_CALL, question=question, tool=tool_text)),
                    schema=CALL_SCHEMA,
                    step=STEP,
                )["call"]
                code = ask_json(
                    llm,
                    messages(
                        fill(
                            TOOL_CODE,
                            question=question,
                            answer=sq.answer,
                            tool=tool_text,
                            call=statement,
                        )
                    ),
                    schema=CODE_SCHEMA,
                    step=STEP,
                )["function"]
            except StepRejected as exc:
                failures.append(exc.detail)
                continue
            for inner in range(o.inner_retries):
                versions += 1
                try:
                    env = self.verify(schema, statement, code, sq.answer, sandbox, what)
                except Failed as failure:
                    failures.append(failure.reason)
                    if inner + 1 == o.inner_retries:
                        break
                    try:
                        repaired = ask_json(
                            llm,
                            messages(
                                fill(
                                    TOOL_REPAIR,
                                    question=question,
                                    answer=sq.answer,
                                    tool=tool_text,
                                    call=statement,
                                    code=code,
                                    reason=failure.reason,
                                    output=failure.output or "(none)",
                                )
                            ),
                            schema=REPAIR_SCHEMA,
                            step=STEP,
                        )
                    except StepRejected as exc:
                        failures.append(exc.detail)
                        break
                    statement, code = repaired["call"], repaired["function"]
                    continue
                return ToolEnvironment(
                    sub_id=sub_id,
                    schema=env.schema,
                    code=env.code,
                    statement=env.statement,
                    call=env.call,
                    output=env.output,
                    attempts=versions,
                )
        raise StepRejected(
            "verification-failed",
            f"sub-question {sub_id}: no version printed {sq.answer!r} in {versions} versions "
            f"({o.outer_retries} documents); last: {failures[-1] if failures else 'none'}",
        )
