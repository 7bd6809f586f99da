"""Step 3: chain verification. A chain is kept only when it passes every configured check:

1. argument-dependency satisfiability from the schemas (no LLM): every required argument of
   every step can come from the task or from an earlier step. An argument must be fed by an
   earlier step (that tool itself, or an output matching it by name, type and description: the
   schema-flow matcher) when its description names another tool of the server as its source
   ("Location id returned by search_locations"), or when it is an identifier (``note_id``)
   that another tool of the server returns and no user-known value (the schema's examples,
   default or enum, or the server's configured scenarios) covers. Anything else a user can
   state in the task.
2. LLM vote: ``samples`` answers (seed=i) to "can this chain form one reasonable task?"; the
   chain passes when "yes" outnumbers "no". Unparseable answers are left out of the count, as
   in the authors' code; when none parses, the chain is dropped as malformed.
3. back-translation: chain -> query -> chain; the chain passes only when the plan read back
   from the query is the same tools in the same order.

Unlike the authors' code, where nothing reads the verification results, a failed check drops
the chain with its reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from astra_core.protocols import LLMBackend
from astra_core.records import ToolChain, ToolServer
from astra_core.tool_schemas import flow_matches, name_tokens, tool_params, tool_returns
from astra_trajectories import prompts
from astra_trajectories.chain_verification import user_known_params
from astra_trajectories.llm_answers import ask
from astra_trajectories.step_outcomes import Rejected, StepFailed

UNKNOWN_TOOL = "chain-unknown-tool"
UNSATISFIABLE = "chain-unsatisfiable-argument"
VOTE_REJECTED = "chain-vote-rejected"
BACK_INVALID = "chain-back-translation-invalid"
BACK_MISMATCH = "chain-back-translation-mismatch"


def named_producers(server: ToolServer, tool: str, description: str) -> list[str]:
    """Other tools of the server that a parameter's description names as its source."""
    return [
        name
        for name in server.tool_names
        if name != tool and re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", description)
    ]


def is_identifier(param: str) -> bool:
    """``order_id``, ``noteId``, ``ids``: a handle a server mints rather than a user value."""
    tokens = name_tokens(param)
    return bool(tokens) and tokens[-1] in ("id", "ids", "uuid", "handle")


def unsatisfied_arguments(
    server: ToolServer, tools: Sequence[str], *, min_score: float = 0.5
) -> list[str]:
    """``tool.param`` for every required argument the chain cannot supply (see the module
    docstring); raises ``KeyError`` for a tool the server lacks."""
    returns = tool_returns(server)
    known = user_known_params(server)
    missing = []
    for index, name in enumerate(tools):
        tool = server.tool(name)
        earlier = tools[:index]
        for param in tool_params(tool):
            producers = named_producers(server, name, param.description)
            if not producers and is_identifier(param.name) and param.name not in known:
                producers = [
                    other
                    for other in server.tool_names
                    if other != name
                    and flow_matches(
                        server.tool(other), returns.get(other), param, min_score=min_score
                    )
                ]
            if not producers:
                continue  # a value the user can state in the task
            if any(p in earlier for p in producers):
                continue
            fed = any(
                flow_matches(server.tool(e), returns.get(e), param, min_score=min_score)
                for e in earlier
            )
            if not fed:
                missing.append(f"{name}.{param.name} (from {', '.join(producers)})")
    return missing


@attrs.frozen
class ChainVerdict:
    """A chain that passed; what the vote and the back-translation said about it."""

    chain: ToolChain
    votes: tuple[int, int] = (0, 0)  # (yes, no)
    user_query: str = ""
    task_plan: str = ""
    back_translated_query: str = ""


class ChainVerifier:
    def __init__(
        self,
        llm: LLMBackend,
        *,
        check_arguments: bool = True,
        vote_samples: int = 3,
        back_translation: bool = True,
        min_match_score: float = 0.5,
        sampling: Mapping[str, Any] | None = None,
    ) -> None:
        self.llm = llm
        self.check_arguments = check_arguments
        self.vote_samples = vote_samples
        self.back_translation = back_translation
        self.min_match_score = min_match_score
        self.sampling = dict(sampling or {})

    def verify(self, server: ToolServer, chain: ToolChain) -> ChainVerdict | Rejected:
        """The verdict, or why the chain was turned down; ``StepFailed`` when the LLM could not
        answer (the chain is dropped with that reason)."""
        unknown = [t for t in chain.tools if t not in server.tool_names]
        if unknown:
            return Rejected(
                UNKNOWN_TOOL, chain.id, f"server {server.title!r} has no tool {unknown[0]!r}"
            )
        if self.check_arguments:
            missing = unsatisfied_arguments(server, chain.tools, min_score=self.min_match_score)
            if missing:
                return Rejected(
                    UNSATISFIABLE,
                    chain.id,
                    f"{prompts.chain_text(chain.tools)}: no earlier step supplies "
                    + "; ".join(missing),
                )
        verdict = ChainVerdict(chain)
        if self.vote_samples:
            verdict = self.vote(server, chain)
            yes, no = verdict.votes
            if yes <= no:
                return Rejected(VOTE_REJECTED, chain.id, f"{yes} yes / {no} no")
        if self.back_translation:
            outcome = self.back_translate(server, chain)
            if isinstance(outcome, Rejected):
                return outcome
            verdict = attrs.evolve(verdict, back_translated_query=outcome)
        return verdict

    def vote(self, server: ToolServer, chain: ToolChain) -> ChainVerdict:
        messages = prompts.chain_vote_messages(server, chain.tools)
        yes = no = 0
        first: Mapping[str, Any] | None = None
        failures: list[StepFailed] = []
        for index in range(self.vote_samples):
            try:
                answer = ask(
                    self.llm,
                    messages,
                    schema=prompts.CHAIN_VOTE_SCHEMA,
                    step="chain-vote",
                    sampling={**self.sampling, "seed": index},
                )
            except StepFailed as exc:
                failures.append(exc)
                continue
            if answer["is_valid"]:
                yes += 1
                first = first or answer
            else:
                no += 1
        if yes + no == 0:
            raise failures[0]
        return ChainVerdict(
            chain,
            (yes, no),
            str((first or {}).get("user_query", "")),
            str((first or {}).get("task_plan", "")),
        )

    def back_translate(self, server: ToolServer, chain: ToolChain) -> str | Rejected:
        """The query written for the chain when reading it back gives the same chain."""
        written = ask(
            self.llm,
            prompts.query_from_chain_messages(server, chain.tools),
            schema=prompts.QUERY_FROM_CHAIN_SCHEMA,
            step="chain-back-translation",
            sampling=self.sampling,
        )
        if not written["valid"] or not written["query"].strip():
            return Rejected(BACK_INVALID, chain.id, "the LLM wrote no sensible query for it")
        planned = ask(
            self.llm,
            prompts.chain_from_query_messages(server, written["query"]),
            schema=prompts.CHAIN_FROM_QUERY_SCHEMA,
            step="chain-back-translation",
            sampling=self.sampling,
        )
        again = tuple(planned["chain"])
        if again != chain.tools:
            return Rejected(
                BACK_MISMATCH,
                chain.id,
                f"{prompts.chain_text(chain.tools)} came back as {prompts.chain_text(again)}",
            )
        return str(written["query"])
