"""The records that flow between stages.

Records are data: frozen, slotted attrs classes with typed fields and a JSON round-trip. Logic
lives in stages. Messages and tools use the OpenAI chat format so that every dataset ASTRA writes
loads with ``datasets.load_dataset("json", ...)`` and feeds TRL unchanged:

* a message is ``{"role", "content", "tool_calls"?, "tool_call_id"?}`` where a tool call is
  ``{"id", "type": "function", "function": {"name", "arguments": "<JSON string>"}}``;
* a tool is ``{"type": "function", "function": {"name", "description", "parameters"}}``.

Every top-level record carries ``schema_version`` and a stable content ``id``: the hash of what
it holds, so a stage that is re-run recognises what it already wrote.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from astra_core.errors import RecordError

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "RECORD_TYPES",
    "SCHEMA_VERSION",
    "TOPOLOGIES",
    "Arena",
    "Episode",
    "Handoff",
    "JSONDict",
    "Record",
    "Reward",
    "Split",
    "SubQuestion",
    "Task",
    "ToolCall",
    "ToolCallResult",
    "ToolChain",
    "ToolEdge",
    "ToolGraph",
    "ToolServer",
    "Topology",
    "Trajectory",
    "canonical_json",
    "content_id",
    "record_type",
    "tool_name",
]

SCHEMA_VERSION = 1

JSONDict = dict[str, Any]
Topology = Literal["single", "parallel-single", "multi", "parallel-multi"]
Split = Literal["", "train", "holdout"]
TOPOLOGIES: tuple[str, ...] = ("single", "parallel-single", "multi", "parallel-multi")

_converter = cattrs.Converter(forbid_extra_keys=True)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the input of every content hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_id(*parts: Any) -> str:
    """A 16-hex-digit id that depends only on ``parts``' content."""
    digest = hashlib.sha256(canonical_json(list(parts)).encode("utf-8")).hexdigest()
    return digest[:16]


def _fill_id(record: Any) -> None:
    # Frozen classes are filled once, right after construction, from their own content.
    if not record.id:
        body = _converter.unstructure(record)
        for name in ("id", *type(record).unhashed):
            body.pop(name, None)
        object.__setattr__(record, "id", content_id(type(record).__name__, body))


R = TypeVar("R", bound="Record")


@attrs.frozen
class Record:
    """Base of the top-level records: ``to_dict``/``from_dict`` and JSON, with a schema version."""

    kind: ClassVar[str] = "record"
    # Fields that say where a record is used, not what it is: left out of its content id.
    unhashed: ClassVar[tuple[str, ...]] = ()
    if TYPE_CHECKING:  # every concrete record has a content id field; declared there for attrs
        id: str

    def to_dict(self) -> JSONDict:
        data: JSONDict = _converter.unstructure(self)
        data["schema_version"] = SCHEMA_VERSION
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any]) -> R:
        body = dict(data)
        version = body.pop("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise RecordError(
                f"{cls.kind} record {body.get('id', '?')!r} has schema_version {version!r}; "
                f"this ASTRA reads versions up to {SCHEMA_VERSION}: upgrade astra-agents"
            )
        try:
            return _converter.structure(body, cls)
        except Exception as exc:  # cattrs raises an ExceptionGroup with one entry per field
            details = (
                "; ".join(cattrs.transform_error(exc))
                if isinstance(exc, cattrs.BaseValidationError)
                else str(exc)
            )
            raise RecordError(
                f"{cls.kind} record {body.get('id', '?')!r} is malformed: {details}"
            ) from exc

    @classmethod
    def from_json(cls: type[R], text: str) -> R:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecordError(f"{cls.kind} record is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise RecordError(f"{cls.kind} record must be a JSON object, got {type(data).__name__}")
        return cls.from_dict(data)


# ---------------------------------------------------------------------------------------------
# Tools and tool graphs (pipeline 1)


def tool_name(tool: Mapping[str, Any]) -> str:
    """The name of an OpenAI tool schema."""
    return str(tool["function"]["name"])


@attrs.frozen
class ToolServer(Record):
    """A group of tools that share state and a domain (an MCP server, an API, a Python module).

    ``endpoint`` says how to call the tools for real: ``{"kind": "mcp-stdio", "command": [...]}``,
    ``{"kind": "mcp-http", "url": "...", "headers": {...}}``, ``{"kind": "python", "catalog":
    "..."}``, or ``None`` when only an emulator can answer.

    What samplers may read to write tasks and hand values on:

    * ``returns``: each tool's output as a JSON Schema (``{"get_order": {"type": "object",
      "properties": {"order_id": ...}}}``); a tool without one is matched by its description;
    * ``phrases``: how a user asks for each tool, ``{param}`` standing for an argument
      (``"show me order {order_id}"``); a tool without one is phrased from its description;
    * ``scenarios``: coherent sets of values a user of the server knows, keyed by parameter
      name (``{"customer_id": "C-1", "city": "Oslo"}``); task writers take the values a chain's
      first calls need from them.
    """

    kind: ClassVar[str] = "tool_server"

    title: str
    tools: tuple[JSONDict, ...]
    description: str = ""
    domain: str = ""
    endpoint: JSONDict | None = None
    # What trajectory samplers read besides the schemas (never shown to a model). Each is left
    # out of the JSON, and so out of the id, while empty: records written before they existed
    # keep their ids. Readers (``astra_core.tool_schemas``) fall back to the keys of the same
    # names in ``endpoint``, where older records and the bundled catalog keep them.
    returns: dict[str, JSONDict] = attrs.Factory(dict)
    phrases: dict[str, str] = attrs.Factory(dict)
    scenarios: tuple[JSONDict, ...] = ()
    id: str = ""

    def __attrs_post_init__(self) -> None:
        _fill_id(self)

    @property
    def tool_names(self) -> tuple[str, ...]:
        return tuple(tool_name(t) for t in self.tools)

    def tool(self, name: str) -> JSONDict:
        for t in self.tools:
            if tool_name(t) == name:
                return t
        raise KeyError(f"server {self.id!r} has no tool {name!r}")


@attrs.frozen
class Handoff:
    """One value an edge hands on: ``target``'s parameter ``param`` takes the value at ``path``
    in ``source``'s output (keys from the output's root; ``"[]"`` is an element of an array, the
    first one when a sampler runs the chain)."""

    param: str
    path: tuple[str, ...]


@attrs.frozen
class ToolEdge:
    """``source``'s output can feed one of ``target``'s parameters; ``reason`` says which.

    ``handoffs`` says exactly which values, when the source of the graph knows them: a sampler
    that chains ``source`` then ``target`` fills those parameters from those paths instead of
    matching the schemas itself. Empty (the default, left out of the JSON) means "match them".
    """

    source: str
    target: str
    weight: float = 1.0
    reason: str = ""
    handoffs: tuple[Handoff, ...] = ()


@attrs.frozen
class ToolGraph(Record):
    """The tool-call graph of one server: nodes are its tools, edges are possible hand-offs."""

    kind: ClassVar[str] = "tool_graph"

    server: ToolServer
    edges: tuple[ToolEdge, ...] = ()
    id: str = ""

    def __attrs_post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", self.server.id)

    def to_networkx(self) -> nx.DiGraph:
        import networkx as nx

        graph = nx.DiGraph(server=self.server.id)
        graph.add_nodes_from(self.server.tool_names)
        for edge in self.edges:
            graph.add_edge(edge.source, edge.target, weight=edge.weight, reason=edge.reason)
        return graph


@attrs.frozen
class ToolChain(Record):
    """An ordered walk through one server's tools."""

    kind: ClassVar[str] = "tool_chain"

    server_id: str
    tools: tuple[str, ...]
    id: str = ""

    def __attrs_post_init__(self) -> None:
        _fill_id(self)


@attrs.frozen
class Task(Record):
    """A user request that needs some of a server's tools.

    ``origin`` is ``"chain"`` when the task was written for a sampled chain, ``"server"`` when it
    was written from the server alone. ``scores`` holds the task scorer's dimensions.
    """

    kind: ClassVar[str] = "task"

    query: str
    server_id: str
    target_tools: tuple[str, ...] = ()
    origin: Literal["chain", "server"] = "chain"
    chain_id: str | None = None
    augmentation: str | None = None
    scores: dict[str, float] = attrs.Factory(dict)
    metadata: JSONDict = attrs.Factory(dict)
    id: str = ""

    def __attrs_post_init__(self) -> None:
        _fill_id(self)


@attrs.frozen
class Trajectory(Record):
    """One SFT sample: OpenAI ``messages`` and ``tools`` plus where it came from and its scores.

    ``status`` is ``"ok"`` or ``"failed"`` (e.g. the judge could not score it); failed records
    are kept out of training data, never passed as good.
    """

    kind: ClassVar[str] = "trajectory"

    messages: tuple[JSONDict, ...]
    tools: tuple[JSONDict, ...]
    task: Task
    scores: dict[str, float] = attrs.Factory(dict)
    reward: float | None = None
    status: Literal["ok", "failed"] = "ok"
    metadata: JSONDict = attrs.Factory(dict)
    id: str = ""

    def __attrs_post_init__(self) -> None:
        _fill_id(self)

    @property
    def tool_calls(self) -> list[JSONDict]:
        """Every tool call the assistant made, in order."""
        return [c for m in self.messages for c in (m.get("tool_calls") or ())]


# ---------------------------------------------------------------------------------------------
# Arenas and episodes (pipeline 2 and RL)


@attrs.frozen
class ToolCall:
    """A call as an agent made it: a tool name and its arguments (already decoded)."""

    name: str
    arguments: JSONDict = attrs.Factory(dict)


@attrs.frozen
class SubQuestion:
    """An atomic step of a decomposed question.

    ``call`` is the call that was verified to return ``answer`` in the sandbox (tool steps only).
    Non-tool steps (``needs_tool=False``) may only be leaves of the dependency graph.
    """

    id: str
    question: str
    answer: str
    depends_on: tuple[str, ...] = ()
    needs_tool: bool = True
    tool: str | None = None
    call: ToolCall | None = None


@attrs.frozen
class Arena(Record):
    """An independent, code-executable, rule-verifiable RL environment.

    ``tools`` are the OpenAI schemas offered to the agent (distractors included); ``tool_code``
    maps each tool name to standard-library Python that defines a function of that name.
    ``split`` is ``"train"`` or ``"holdout"``, decided once by the ``synth-arenas`` stage (its
    ``holdout_fraction``) and read by every trainer and evaluator; ``""`` for an arena no stage
    has split yet, which trainers read as training. It is not part of the arena's id.
    """

    kind: ClassVar[str] = "arena"
    unhashed: ClassVar[tuple[str, ...]] = ("split",)

    question: str
    answer: str
    topology: Topology
    subquestions: tuple[SubQuestion, ...]
    tools: tuple[JSONDict, ...]
    tool_code: dict[str, str]
    distractors: tuple[str, ...] = ()
    domain: str = ""
    metadata: JSONDict = attrs.Factory(dict)
    split: Split = ""
    id: str = ""

    def __attrs_post_init__(self) -> None:
        _fill_id(self)

    @property
    def tool_names(self) -> tuple[str, ...]:
        return tuple(tool_name(t) for t in self.tools)

    @property
    def held_out(self) -> bool:
        """Whether the arena is for evaluation only (never trained on)."""
        return self.split == "holdout"

    @property
    def needed(self) -> tuple[SubQuestion, ...]:
        """The sub-questions a tool call must solve (the reward's denominator)."""
        return tuple(sq for sq in self.subquestions if sq.needs_tool)


@attrs.frozen
class ToolCallResult:
    """A call and what came back. ``error`` is True for failed or malformed calls."""

    name: str
    arguments: JSONDict
    output: str
    error: bool = False


@attrs.frozen
class Reward:
    """A verifier's verdict: the scalar ``value``, whether the episode ``success``-fully did
    the task by the verifier's own rule (eval's success rate counts it), and the parts they
    came from."""

    value: float
    recall: float = 0.0
    precision: float = 0.0
    solved: tuple[str, ...] = ()
    calls: int = 0
    parts: dict[str, float] = attrs.Factory(dict)
    success: bool = False


@attrs.frozen
class Episode(Record):
    """One rollout in an arena: the conversation, the exact token ids with their loss mask, the
    calls with their outputs and the reward. ``stop_reason`` is ``"no_call"``, ``"turn_cap"``,
    ``"length_cap"`` or ``"solved"``."""

    kind: ClassVar[str] = "episode"

    arena_id: str
    messages: tuple[JSONDict, ...]
    calls: tuple[ToolCallResult, ...] = ()
    token_ids: tuple[int, ...] = ()
    loss_mask: tuple[int, ...] = ()
    reward: Reward | None = None
    turns: int = 0
    stop_reason: str = ""
    id: str = ""

    def __attrs_post_init__(self) -> None:
        _fill_id(self)

    @classmethod
    def of_calls(
        cls, arena: Arena, calls: Sequence[ToolCallResult], messages: Sequence[JSONDict] = ()
    ) -> Episode:
        """An episode in ``arena`` that made ``calls``: what a verifier scores when only the
        calls are known (tests, replays of gold calls)."""
        return cls(arena.id, tuple(messages), tuple(calls))

    @property
    def final_answer(self) -> str:
        """What the agent answered last: the content of the last assistant message that made
        no tool call (``""`` when the episode ended on a call)."""
        for message in reversed(self.messages):
            if message.get("role") == "assistant":
                if message.get("tool_calls"):
                    return ""
                return str(message.get("content") or "")
        return ""


RECORD_TYPES: dict[str, type[Record]] = {
    cls.kind: cls for cls in (ToolServer, ToolGraph, ToolChain, Task, Trajectory, Arena, Episode)
}


# Fields added with an empty default are not written while empty: a record that does not use
# them serialises, and hashes to its id, exactly as before the fields existed.
_EMPTY_OMITTED = override(omit_if_default=True)
_converter.register_unstructure_hook(
    ToolServer,
    make_dict_unstructure_fn(
        ToolServer,
        _converter,
        returns=_EMPTY_OMITTED,
        phrases=_EMPTY_OMITTED,
        scenarios=_EMPTY_OMITTED,
    ),
)
_converter.register_unstructure_hook(
    ToolEdge, make_dict_unstructure_fn(ToolEdge, _converter, handoffs=_EMPTY_OMITTED)
)


def record_type(kind: str) -> type[Record]:
    """The record class for a kind name (``"trajectory"``, ``"arena"``, ...)."""
    try:
        return RECORD_TYPES[kind]
    except KeyError:
        raise RecordError(
            f"unknown record kind {kind!r}; known: {', '.join(sorted(RECORD_TYPES))}"
        ) from None


def as_tuple(items: Sequence[Any] | None) -> tuple[Any, ...]:
    return tuple(items or ())
