"""What a component of each kind must provide.

A plugin registers named *factories*; what a factory returns must satisfy the Protocol of its
kind, checked when the component is built (an error names the plugin that registered it). The
five stage kinds of the mission come first, then the supporting kinds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from astra_core.records import (
    Arena,
    Episode,
    JSONDict,
    Reward,
    ToolCall,
    ToolCallResult,
    ToolGraph,
    ToolServer,
    Trajectory,
)

if TYPE_CHECKING:
    import torch

    from astra_core.context import StageContext

__all__ = [
    "KIND_PROTOCOLS",
    "STAGE_KINDS",
    "ArenaRuntime",
    "ArenaStep",
    "CallCreditVerifier",
    "ChatResponse",
    "EnvironmentGenerator",
    "Evaluator",
    "LLMBackend",
    "MultiTurnRuntime",
    "ParsedTurn",
    "RLAlgorithm",
    "Sandbox",
    "SandboxResult",
    "SandboxSession",
    "SessionToolExecutor",
    "ToolCallParser",
    "ToolExecutor",
    "ToolGraphBuilder",
    "ToolGraphSource",
    "Tracker",
    "Trainer",
    "TrajectorySampler",
    "TrajectoryStep",
    "Verifier",
]

# --- stage kinds ------------------------------------------------------------------------------


@runtime_checkable
class ToolGraphSource(Protocol):
    """Yields one tool-call graph per tool server (a catalog file, live MCP servers, ...).

    Servers that fail the source's filters are reported with ``ctx.drop(reason, ...)``.
    """

    def load(self, ctx: StageContext) -> Iterable[ToolGraph]: ...


@runtime_checkable
class ToolGraphBuilder(Protocol):
    """Finds the edges of one server's tool graph: ``build(server)`` returns a ``ToolGraph`` of
    ``server`` whose edges say which tool's output can feed which tool (``ToolEdge``, with the
    hand-offs when the builder knows them). Tool-graph sources build one by the name their
    ``graph_builder`` option gives (``builder.build("tool_graph_builder", name)``)."""

    def build(self, server: ToolServer) -> ToolGraph: ...


@runtime_checkable
class TrajectoryStep(Protocol):
    """One step of a trajectory sampler, chosen by name in the sampler's options so that a
    plugin replaces that step alone. ``step`` names the slot it fills; the call it must answer
    is the slot's, documented by the sampler that has it (``offline-chain-walk``:
    ``chain_verifier``, ``task_generator``, ``agent``, ``judge``; see docs/hooks.md). A step's
    options take the sampler's options of the same names as their defaults."""

    step: str


@runtime_checkable
class TrajectorySampler(Protocol):
    """Turns one server's tool graph into SFT trajectories (chains, tasks, rollouts, judging).

    It may yield trajectories with ``status="failed"``; the stage drops them with their reason.
    """

    def sample(self, graph: ToolGraph, ctx: StageContext) -> Iterable[Trajectory]: ...


@runtime_checkable
class EnvironmentGenerator(Protocol):
    """Yields verified arenas (RL environments). Failed candidates go to ``ctx.drop``."""

    def generate(self, ctx: StageContext) -> Iterable[Arena]: ...


@runtime_checkable
class ArenaStep(Protocol):
    """One step of an environment generator, chosen by name in the generator's options so that
    a plugin replaces that step alone. ``step`` names the slot it fills; the call it must answer
    is the slot's, documented by the generator that has it (``qa-llm``: ``qa_source``,
    ``decomposer``, ``necessity_checker``, ``quality_scorer``, ``tool_writer``,
    ``tool_merger``; see docs/hooks.md and ``astra_core.arena_synthesis``)."""

    step: str


@runtime_checkable
class Verifier(Protocol):
    """Scores what an agent did in an arena, by rules: the RL reward.

    ``episode`` is the whole episode: its ``messages``, its ``calls`` with their outputs (in
    order; a runtime may hand richer results, e.g. with the user turn of each call) and its
    ``final_answer``. The ``Reward`` says itself whether the episode succeeded
    (``Reward.success``); eval's success rate counts that.
    """

    def score(self, arena: Arena, episode: Episode) -> Reward: ...


@runtime_checkable
class CallCreditVerifier(Verifier, Protocol):
    """A verifier that can also say what each call contributed: ``call_credit`` returns one
    value in [0, 1] per call, in order. The RL trainer's ``turn_credit`` option uses it to give
    each turn's tokens an advantage of their own on top of the episode's."""

    def call_credit(self, arena: Arena, calls: Sequence[ToolCallResult]) -> tuple[float, ...]: ...


@runtime_checkable
class RLAlgorithm(Protocol):
    """Advantages from grouped rewards and the policy loss on a batch of sampled tokens.

    ``rewards`` has shape ``(groups, group_size)``; the tensors of ``policy_loss`` have shape
    ``(batch, tokens)`` with ``mask`` 1 on the tokens the policy sampled. An algorithm that shapes
    by response length may also have ``reward_shaping(lengths, truncated)`` (added to each
    episode's reward before ``advantages``) and ``sequence_weights(lengths, truncated)`` (each
    sequence's loss-mask multiplier); ``lengths`` are tokens after the prompt and ``truncated``
    marks episodes cut at the rollout's length cap. The bundled RL trainer applies both.
    """

    def advantages(self, rewards: torch.Tensor) -> torch.Tensor: ...

    def policy_loss(
        self,
        logprobs: torch.Tensor,
        old_logprobs: torch.Tensor,
        advantages: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]: ...


# --- supporting kinds -------------------------------------------------------------------------


@attrs.frozen
class ChatResponse:
    """What an LLM backend returns: an OpenAI assistant message, plus token data when known;
    ``cached`` is true when a response cache answered instead of the model."""

    message: JSONDict
    finish_reason: str = "stop"
    usage: dict[str, int] = attrs.Factory(dict)
    cached: bool = attrs.field(default=False, eq=False)  # the same answer, wherever it came from


@runtime_checkable
class LLMBackend(Protocol):
    """Chat completion with optional tools (OpenAI-compatible server, local model, ...)."""

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        **sampling: Any,
    ) -> ChatResponse: ...


@runtime_checkable
class ToolExecutor(Protocol):
    """Answers a tool call on a server: for real (MCP, Python) or emulated."""

    def call(self, server: ToolServer, call: ToolCall) -> ToolCallResult: ...


@runtime_checkable
class SessionToolExecutor(ToolExecutor, Protocol):
    """A tool executor whose tools keep state per conversation: ``open_session(key)`` returns an
    executor over a fresh copy of that state (one per trajectory), so sessions never see each
    other's changes. Agents use it whenever an executor offers it."""

    def open_session(self, key: str = "") -> ToolExecutor: ...


@attrs.frozen
class SandboxResult:
    """What came back from running code in a sandbox; ``limit`` names a limit that was hit."""

    stdout: str
    stderr: str
    exit_code: int
    limit: str | None = None
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.limit is None


@runtime_checkable
class Sandbox(Protocol):
    """Runs untrusted Python (synthesized tools, model output) isolated from the host.

    Two optional attributes say what code it may run (``astra_core.sandbox_policy`` reads them;
    a sandbox without them counts as unisolated and not allowed): ``isolated`` is true when the
    code cannot reach the host's files or network (bubblewrap); ``allow_unisolated`` is true
    when the config of an unisolated sandbox allows LLM-written tool code anyway. Arena
    runtimes and gold-call checks refuse LLM-written code where both are false.
    """

    def run(self, code: str, *, timeout_s: float | None = None) -> SandboxResult: ...


@runtime_checkable
class SandboxSession(Protocol):
    """A persistent sandbox worker, from ``sandbox.session()`` where a sandbox offers one: code
    ``load``-ed once, then functions ``call``-ed with state kept until ``close()``. Both return
    an outcome with ``output`` and ``error`` (``None`` when it ran)."""

    def load(self, code: str) -> Any: ...

    def call(self, name: str, arguments: dict[str, Any]) -> Any: ...

    def close(self) -> None: ...


@runtime_checkable
class ArenaRuntime(Protocol):
    """Plays one episode of an arena (``astra_arena_runtime`` answers one per episode).

    ``reset()`` starts afresh (no state from another episode); ``step(call)`` runs one parsed
    call, or turns a parse error given as a string into an error observation, and never raises
    for anything the model did; ``close()`` frees what ``reset()`` took.
    """

    def reset(self) -> None: ...

    def step(self, call: ToolCall | str) -> ToolCallResult: ...

    def close(self) -> None: ...


@runtime_checkable
class MultiTurnRuntime(ArenaRuntime, Protocol):
    """A runtime for arenas with several user turns: ``tools`` are the schemas offered now
    (read before ``reset()`` for the prompt); ``next_turn()`` is asked for when the model
    answers without a call and returns the next user message, or ``None`` at the end."""

    @property
    def tools(self) -> tuple[JSONDict, ...]: ...

    def next_turn(self) -> str | None: ...


@attrs.frozen
class ParsedTurn:
    """An assistant turn split into text and tool calls; ``errors`` holds malformed calls."""

    content: str
    calls: tuple[ToolCall, ...] = ()
    errors: tuple[str, ...] = ()


@runtime_checkable
class ToolCallParser(Protocol):
    """Reads tool calls out of generated text and writes them back in the same format."""

    def parse(self, text: str) -> ParsedTurn: ...

    def format(self, calls: Sequence[ToolCall]) -> str: ...


@runtime_checkable
class Tracker(Protocol):
    """Receives metrics (training steps, stage summaries)."""

    def log(self, metrics: Mapping[str, float], step: int) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Trainer(Protocol):
    """Runs a training stage (``train-sft``, ``train-rl``) and returns its metrics; writes
    checkpoints and metrics under ``ctx.out_dir``. The metrics ``steps`` (optimizer steps in all)
    and ``model`` (the path of the model it saved) are what ``report.md`` says the stage made."""

    def run(self, ctx: StageContext) -> Mapping[str, Any]: ...


@runtime_checkable
class Evaluator(Protocol):
    """Runs the ``eval`` stage: measures one or more models (e.g. on held-out arenas) and
    returns the metrics for the run report; writes its results under ``ctx.out_dir``. The
    metric ``arenas`` (how many it evaluated on) is what ``report.md`` says the stage made."""

    def run(self, ctx: StageContext) -> Mapping[str, Any]: ...


# The kind names used in configs, in ``astra plugins --json`` and in registration hooks.
KIND_PROTOCOLS: dict[str, type] = {
    "tool_graph_source": ToolGraphSource,
    "tool_graph_builder": ToolGraphBuilder,
    "trajectory_step": TrajectoryStep,
    "trajectory_sampler": TrajectorySampler,
    "environment_generator": EnvironmentGenerator,
    "arena_step": ArenaStep,
    "verifier": Verifier,
    "rl_algorithm": RLAlgorithm,
    "llm_backend": LLMBackend,
    "tool_executor": ToolExecutor,
    "sandbox": Sandbox,
    "tool_call_parser": ToolCallParser,
    "tracker": Tracker,
    "trainer": Trainer,
    "evaluator": Evaluator,
}
STAGE_KINDS = (
    "tool_graph_source",
    "trajectory_sampler",
    "environment_generator",
    "verifier",
    "rl_algorithm",
)
