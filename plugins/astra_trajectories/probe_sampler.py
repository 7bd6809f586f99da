"""The ``mcp-probe`` trajectory sampler: an offline probe of live MCP servers.

This is not the paper's rollout (an LLM reading a task and choosing calls); it is a scripted
probe that needs no LLM. Per server it draws call plans whose arguments come from earlier
outputs, configured scenarios or the schemas (``probe_plans``), writes a template request that
describes those calls, makes the calls on the live server through a tool executor (``mcp`` by
default) and records the conversation in OpenAI format: every tool message is what the server
returned. A call that errors, or an argument that cannot be taken from an earlier output, ends
the trajectory with ``status="failed"`` and its reason (the stage counts it as a drop).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from astra_core.options import options_to_dict
from astra_core.records import (
    JSONDict,
    Task,
    ToolCall,
    ToolGraph,
    ToolServer,
    Trajectory,
    content_id,
)
from astra_trajectories.probe_options import McpProbeOptions
from astra_trajectories.probe_plans import (
    MissingValue,
    Plan,
    Planner,
    Step,
    arguments_for,
    validate_arguments,
)

if TYPE_CHECKING:
    from astra_core.context import StageContext
    from astra_core.registry import ComponentBuilder

SAMPLER = "mcp-probe"
GENERATOR = "mcp-probe-template"
PROBE_NOTE = (
    "offline probe of a live MCP server: template request and scripted calls, not the paper's "
    "LLM rollout; every tool output is the server's real answer"
)
NO_PLANS = "probe-no-callable-plan"
TOOL_ERROR = "probe-tool-error"
MISSING_VALUE = "probe-missing-upstream-value"
INVALID_ARGUMENTS = "probe-invalid-arguments"
# outputs longer than this are not parsed for values (literal parsing of huge text is slow)
MAX_PARSE_CHARS = 200_000


def parse_output(text: str) -> Any:
    """A tool output as data when it is JSON or a Python literal (some servers print reprs),
    else the text itself."""
    if len(text) > MAX_PARSE_CHARS:
        return text
    try:
        return json.loads(text)
    except ValueError:
        pass
    stripped = text.strip()
    if stripped[:1] in "[{(":
        try:
            return ast.literal_eval(stripped)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
    return text


def short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


IRREGULAR_VERBS = {"does": "do", "has": "have", "is": "be", "goes": "go"}


def imperative(word: str) -> str:
    """``Shows`` -> ``show``: descriptions often start with a third-person verb."""
    lower = word.lower()
    if lower in IRREGULAR_VERBS:
        return IRREGULAR_VERBS[lower]
    if lower.endswith("ies") and len(lower) > 4:
        return lower[:-3] + "y"
    if lower.endswith(("shes", "ches", "xes", "sses", "zes")):
        return lower[:-2]
    if lower.endswith("s") and not lower.endswith(("ss", "us", "is")) and len(lower) > 3:
        return lower[:-1]
    return lower


def tool_phrase(server: ToolServer, tool: str) -> str:
    """The first sentence of the tool's description, as an instruction."""
    description = str(server.tool(tool)["function"].get("description") or "").strip()
    sentence = description.split(". ")[0].split("\n")[0].rstrip(".").strip()
    if not sentence:
        return f"use {tool}"
    first, _, rest = sentence.partition(" ")
    return f"{imperative(first)} {rest}".strip()


def humanise(param: str) -> str:
    return param.replace("_", " ").strip()


def step_request(server: ToolServer, step: Step, tools: Sequence[str]) -> str:
    parts = []
    for b in step.bindings:
        if b.source == "step":
            assert b.step is not None
            parts.append(f"{humanise(b.param)}: the one {tools[b.step]} returns")
        else:
            value = b.value if isinstance(b.value, str) else json.dumps(b.value)
            parts.append(f"{humanise(b.param)}: {value}")
    phrase = tool_phrase(server, step.tool)
    return f"{phrase} ({'; '.join(parts)})" if parts else phrase


def request_text(server: ToolServer, plan: Plan) -> str:
    """The template user request: the calls in order, with the values the user states."""
    steps = [step_request(server, s, plan.tools) for s in plan.steps]
    if len(steps) == 1:
        body = steps[0]
    elif len(steps) == 2:
        body = f"{steps[0]}, and then {steps[1]}"
    else:
        body = f"{steps[0]}, then " + ", then ".join(steps[1:-1]) + f", and finally {steps[-1]}"
    return f"Please {body}."


class McpProbeSampler:
    def __init__(self, options: McpProbeOptions, builder: ComponentBuilder) -> None:
        self.options = options
        self.executor = builder.build("tool_executor", options.executor, key="executor")
        # a trajectory's id depends on its plan and these options, so a resumed run skips
        # (and does not call again) what it already wrote
        self.fingerprint = content_id(SAMPLER, options_to_dict(options))

    def plans(self, server: ToolServer, ctx: StageContext) -> list[Plan]:
        o = self.options
        planner = Planner(
            server,
            allow_writes=o.allow_writes,
            skip_tools=o.skip_tools,
            min_match_score=o.min_match_score,
        )
        rng = ctx.rng(f"{SAMPLER}:plans:{server.id}")
        found: dict[str, Plan] = {}
        for _ in range(o.attempts_per_server):
            if len(found) >= o.trajectories_per_server:
                break
            plan = planner.draw(rng, min_calls=o.min_calls, max_calls=o.max_calls)
            if plan is not None:
                found.setdefault(plan.key, plan)
        return list(found.values())

    def sample(self, graph: ToolGraph, ctx: StageContext) -> Iterator[Trajectory]:
        server = graph.server
        plans = self.plans(server, ctx)
        if not plans:
            ctx.drop(
                NO_PLANS,
                f"mcp-probe/{server.id}",
                f"{server.title}: no tool's required arguments can be filled from the schemas, "
                "the configured scenarios or earlier outputs (add scenarios to the server's "
                "config, or allow_writes)",
            )
            return
        try:
            for plan in ctx.progress(plans, total=len(plans), desc=server.title, unit="plan"):
                trajectory_id = content_id(
                    "trajectory", SAMPLER, server.id, plan.key, self.fingerprint
                )
                if not ctx.in_shard(trajectory_id) or ctx.seen(trajectory_id):
                    continue
                yield self.trajectory(server, plan, trajectory_id)
        finally:
            close_server = getattr(self.executor, "close_server", None)
            if callable(close_server):
                close_server(server)

    def system_message(self, server: ToolServer) -> str:
        description = server.description.strip()
        if description and not description.endswith("."):
            description += "."
        return self.options.system_prompt.format(
            title=server.title, description=description
        ).strip()

    def trajectory(self, server: ToolServer, plan: Plan, trajectory_id: str) -> Trajectory:
        query = request_text(server, plan)
        messages: list[JSONDict] = [
            {"role": "system", "content": self.system_message(server)},
            {"role": "user", "content": query},
        ]
        outputs: list[Any] = []
        texts: list[str] = []
        failure: tuple[str, str] | None = None
        for index, step in enumerate(plan.steps):
            try:
                arguments = arguments_for(step, outputs)
            except MissingValue as exc:
                failure = (MISSING_VALUE, f"step {index + 1} {step.tool}: {exc}")
                break
            invalid = validate_arguments(server.tool(step.tool), arguments)
            if invalid is not None:
                failure = (INVALID_ARGUMENTS, f"step {index + 1} {step.tool}: {invalid}")
                break
            call_id = f"call_{index + 1}_{content_id(trajectory_id, index)[:8]}"
            messages.append(
                {
                    "role": "assistant",
                    "content": f"I'll {tool_phrase(server, step.tool)}.",
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {
                                "name": step.tool,
                                "arguments": json.dumps(arguments, ensure_ascii=False),
                            },
                        }
                    ],
                }
            )
            result = self.executor.call(server, ToolCall(step.tool, arguments))
            messages.append({"role": "tool", "tool_call_id": call_id, "content": result.output})
            if result.error:
                failure = (TOOL_ERROR, f"step {index + 1} {step.tool}: {short(result.output, 300)}")
                break
            outputs.append(parse_output(result.output))
            texts.append(result.output)
        if failure is None:
            lines = [
                f"- {t}: {short(text, 240)}" for t, text in zip(plan.tools, texts, strict=True)
            ]
            answer = "Here is what the tools returned:\n" + "\n".join(lines)
        else:
            answer = f"I could not finish: {failure[1]}"
        messages.append({"role": "assistant", "content": answer})
        task = Task(
            query=query,
            server_id=server.id,
            target_tools=plan.tools,
            origin="server",
            metadata={
                "generator": GENERATOR,
                "user_values": json.dumps(plan.user_values(), ensure_ascii=False, sort_keys=True),
            },
        )
        endpoint = server.endpoint or {}
        metadata: JSONDict = {
            "sampler": SAMPLER,
            "note": PROBE_NOTE,
            "server_id": server.id,
            "server": server.title,
            "domain": server.domain,
            "calls": list(plan.tools),
            "bindings": plan.describe(),
            "endpoint": {"kind": endpoint.get("kind"), "command": endpoint.get("command")},
        }
        if failure is not None:
            metadata["failure"], metadata["failure_detail"] = failure
        return Trajectory(
            messages=tuple(messages),
            tools=server.tools,
            task=task,
            status="failed" if failure is not None else "ok",
            metadata=metadata,
            id=trajectory_id,
        )
