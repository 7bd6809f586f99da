"""Step 4a: tasks, T(s) = T_chain(s) ∪ T_server(s).

Chain-conditioned tasks are written for a verified chain (their target tools are the chain);
server-only tasks from the server alone, for a given number of tools (the LLM names the tools
it meant, and a task naming a tool the server lacks is rejected). Unlike the authors' code,
server-only prompts run once per server, not once per sub-chain, and none is thrown away.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from astra_core.protocols import LLMBackend
from astra_core.records import Task, ToolChain, ToolServer
from astra_trajectories import prompts
from astra_trajectories.language import dominant_script
from astra_trajectories.llm_answers import ask
from astra_trajectories.step_outcomes import Rejected

STEP = "task-generation"
UNKNOWN_TOOL = "task-unknown-tool"


def _metadata(query: str, **extra: Any) -> dict[str, Any]:
    return {"generator": "llm", "script": dominant_script(query), **extra}


class TaskWriter:
    def __init__(
        self,
        llm: LLMBackend,
        *,
        tasks_per_chain: int = 1,
        server_tasks: int = 1,
        sampling: Mapping[str, Any] | None = None,
    ) -> None:
        self.llm = llm
        self.tasks_per_chain = tasks_per_chain
        self.server_tasks = server_tasks
        self.sampling = dict(sampling or {})

    def for_chain(self, server: ToolServer, chain: ToolChain) -> list[Task | Rejected]:
        """Tasks whose solution follows ``chain``; ``StepFailed`` when the LLM fails."""
        answer = ask(
            self.llm,
            prompts.chain_tasks_messages(server, chain.tools, self.tasks_per_chain),
            schema=prompts.CHAIN_TASKS_SCHEMA,
            step=STEP,
            sampling=self.sampling,
        )
        tasks: list[Task | Rejected] = []
        for item in answer["tasks"][: self.tasks_per_chain]:
            query = item["query"].strip()
            if not query:
                continue
            tasks.append(
                Task(
                    query=query,
                    server_id=server.id,
                    target_tools=chain.tools,
                    origin="chain",
                    chain_id=chain.id,
                    metadata=_metadata(query),
                )
            )
        return _unique(tasks)

    def for_server(self, server: ToolServer, num_tools: int) -> list[Task | Rejected]:
        """Tasks written from the server alone, each needing about ``num_tools`` tools."""
        answer = ask(
            self.llm,
            prompts.server_tasks_messages(server, num_tools, self.server_tasks),
            schema=prompts.SERVER_TASKS_SCHEMA,
            step=STEP,
            sampling=self.sampling,
        )
        tasks: list[Task | Rejected] = []
        for item in answer["tasks"][: self.server_tasks]:
            query = item["query"].strip()
            if not query:
                continue
            task = Task(
                query=query,
                server_id=server.id,
                target_tools=tuple(item["target_tools"]),
                origin="server",
                metadata=_metadata(query, num_tools=num_tools),
            )
            unknown = [t for t in task.target_tools if t not in server.tool_names]
            if unknown:
                tasks.append(
                    Rejected(
                        UNKNOWN_TOOL,
                        task.id,
                        f"server {server.title!r} has no tool {unknown[0]!r} (task: {query[:80]})",
                    )
                )
            else:
                tasks.append(task)
        return _unique(tasks)


def _unique(items: list[Task | Rejected]) -> list[Task | Rejected]:
    """The same query twice in one answer is one task."""
    seen: set[str] = set()
    out: list[Task | Rejected] = []
    for item in items:
        if isinstance(item, Task):
            if item.id in seen:
                continue
            seen.add(item.id)
        out.append(item)
    return out
