"""Reading tool schemas for data flow: what a tool needs (its required parameters), what it
returns (the output schema a ``ToolServer`` documents) and which returned value can fill which
parameter, matched by name, type and description. No LLM.

Graph builders (the bundled ``schema-flow`` one) and trajectory samplers both use these
functions, so a graph edge and a verified hand-off always agree. What a tool returns is read
from ``ToolServer.returns`` (see ``tool_returns``); tools without an output schema are matched
from their name and description instead (a ``search_orders`` tool produces orders, so it can
feed ``order_id``), with a lower score.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from astra_core.records import JSONDict, ToolServer, tool_name

__all__ = [
    "ARRAY_STEP",
    "DESCRIBED_SCORE",
    "FieldMatch",
    "OutputField",
    "ParamSpec",
    "described_fields",
    "field_matches",
    "flow_matches",
    "json_type",
    "match_param",
    "name_tokens",
    "produced_fields",
    "server_scenarios",
    "singular",
    "text_tokens",
    "tool_params",
    "tool_phrases",
    "tool_returns",
]

# A path step that means "an element of this array" (the offline agent takes the first one).
ARRAY_STEP = "[]"

_STOP_TEXT = (
    "a an and as at be by e eg for from g in into is it its of on or the this to with you your "
    "which that will can may one"
)
STOP_WORDS = frozenset(_STOP_TEXT.split())
# Tools whose name starts with one of these produce the entity their name mentions.
_PRODUCER_TEXT = (
    "get list search find fetch query lookup look read create add book open make show "
    "retrieve describe"
)
PRODUCER_VERBS = frozenset(_PRODUCER_TEXT.split())
# Score of a parameter naming a role of a returned value (from_account_id <- account_id).
ROLE_PREFIX_SCORE = 0.7


# Graph building matches every tool against every other, so the same names and descriptions
# are tokenised over and over: the token functions below are memoised (pure functions of a
# string; bounded, as a long-lived process may see many catalogs).
_TOKEN_CACHE = 1 << 16
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")


def name_tokens(name: str) -> list[str]:
    """``fromAccountId`` / ``from_account_id`` -> ``["from", "account", "id"]``."""
    return list(_name_tokens(name))


@functools.lru_cache(maxsize=_TOKEN_CACHE)
def _name_tokens(name: str) -> tuple[str, ...]:
    spaced = _CAMEL.sub(r"\1 \2", name)
    return tuple(t for t in _NOT_ALNUM.split(spaced.lower()) if t)


@functools.lru_cache(maxsize=_TOKEN_CACHE)
def singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("ses") and len(word) > 4:
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def text_tokens(text: str) -> set[str]:
    """Content words of a description, singular, without stop words and bare numbers."""
    return set(_text_tokens(text))


@functools.lru_cache(maxsize=_TOKEN_CACHE)
def _text_tokens(text: str) -> frozenset[str]:
    return frozenset(
        singular(t)
        for t in _name_tokens(text)
        if t not in STOP_WORDS and not t.isdigit() and len(t) > 1
    )


@functools.lru_cache(maxsize=_TOKEN_CACHE)
def _singular_tokens(name: str) -> tuple[str, ...]:
    """``name_tokens`` of ``name``, each made singular."""
    return tuple(singular(t) for t in _name_tokens(name))


def json_type(schema: Mapping[str, Any]) -> str | None:
    """The JSON Schema type of a schema, the first non-null one of a union."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        return str(kinds[0]) if kinds else None
    return str(kind) if kind else None


@attrs.frozen
class OutputField:
    """A value a tool returns: ``path`` from the output's root (``ARRAY_STEP`` for "an element
    of"), the field ``name``, JSON ``type``, ``description`` and the enclosing property."""

    tool: str
    path: tuple[str, ...]
    name: str
    type: str | None
    description: str = ""
    enum: tuple[Any, ...] | None = None
    container: str | None = None
    described: bool = False  # inferred from the tool's name/description, no output schema

    @property
    def display(self) -> str:
        return f"{self.tool}." + ".".join(self.path).replace(f".{ARRAY_STEP}", ARRAY_STEP)

    @property
    def in_array(self) -> bool:
        return ARRAY_STEP in self.path

    @property
    def object_path(self) -> tuple[str, ...]:
        """The path of the object that holds this field (its siblings share it)."""
        return self.path[:-1]


@attrs.frozen
class ParamSpec:
    """One parameter of a tool: its name, JSON type, description and whether it is required."""

    name: str
    type: str | None
    description: str = ""
    enum: tuple[Any, ...] | None = None
    required: bool = True


@attrs.frozen
class FieldMatch:
    """``field`` can fill ``param`` with confidence ``score``; ``basis`` says why."""

    param: str
    field: OutputField
    score: float
    basis: str

    def reason(self, target: str) -> str:
        return f"{self.field.display} -> {target}.{self.param} ({self.basis})"


def produced_fields(tool: str, returns: Mapping[str, Any] | None) -> list[OutputField]:
    """Every scalar value reachable in an output schema (arrays of objects included)."""
    out: list[OutputField] = []

    def walk(schema: Mapping[str, Any], path: tuple[str, ...], container: str | None) -> None:
        kind = json_type(schema)
        if kind == "object" or "properties" in schema:
            for key, sub in (schema.get("properties") or {}).items():
                if isinstance(sub, Mapping):
                    walk(sub, (*path, str(key)), str(key))
            return
        if kind == "array":
            items = schema.get("items")
            if not isinstance(items, Mapping):
                return
            if json_type(items) == "object" or "properties" in items:
                walk(items, (*path, ARRAY_STEP), container)
            elif path:
                # an array of scalars: each element is a value named after the array
                out.append(
                    OutputField(
                        tool,
                        (*path, ARRAY_STEP),
                        singular(path[-1]),
                        json_type(items),
                        str(items.get("description") or schema.get("description") or ""),
                        tuple(items["enum"]) if isinstance(items.get("enum"), list) else None,
                        container,
                    )
                )
            return
        if path:
            enum = schema.get("enum")
            parent = [p for p in path[:-1] if p != ARRAY_STEP]
            out.append(
                OutputField(
                    tool,
                    path,
                    path[-1],
                    kind,
                    str(schema.get("description") or ""),
                    tuple(enum) if isinstance(enum, list) else None,
                    parent[-1] if parent else None,
                )
            )

    if returns:
        walk(returns, (), None)
    return out


def tool_params(tool: Mapping[str, Any], *, required_only: bool = True) -> list[ParamSpec]:
    """A tool's parameters (``ParamSpec``) in schema order: only the required ones unless
    ``required_only`` is false."""
    parameters = tool["function"].get("parameters") or {}
    required = set(parameters.get("required") or ())
    out = []
    for name, schema in (parameters.get("properties") or {}).items():
        if required_only and name not in required:
            continue
        schema = schema if isinstance(schema, Mapping) else {}
        enum = schema.get("enum")
        out.append(
            ParamSpec(
                str(name),
                json_type(schema),
                str(schema.get("description") or ""),
                tuple(enum) if isinstance(enum, list) else None,
                name in required,
            )
        )
    # keep the schema's required order: it is the order people state arguments in
    order = list(parameters.get("required") or ())
    out.sort(key=lambda p: order.index(p.name) if p.name in order else len(order))
    return out


def _types_fit(param: ParamSpec, field: OutputField) -> float:
    """1.0 when the field's values are valid for the parameter, a penalty when unsure, 0 never."""
    widening = param.type == "number" and field.type == "integer"
    if param.type and field.type and param.type != field.type and not widening:
        return 0.0
    if param.enum is not None:
        if field.enum is not None:
            return 1.0 if set(field.enum) <= set(param.enum) else 0.0
        return 0.8
    return 1.0


# Field names that say nothing alone: ``airports[].name`` is an airport name, not any name.
GENERIC_NAMES = frozenset({"id", "name", "title", "code", "type", "key", "value", "label"})
DESCRIPTION_MIN_SIMILARITY = 0.45
# Score of a hand-off read from a tool's name or description (no output schema to check).
DESCRIBED_SCORE = 0.5


def entity_tokens(field: OutputField) -> list[str]:
    """The entity a field belongs to: its enclosing property (``orders`` -> ``order``), or for a
    top-level field the noun of the tool's name (``get_order`` -> ``order``)."""
    return list(_entity_tokens(field.container, field.tool))


@functools.lru_cache(maxsize=_TOKEN_CACHE)
def _entity_tokens(container: str | None, tool: str) -> tuple[str, ...]:
    if container is not None:
        return _singular_tokens(container)
    toks = _name_tokens(tool)
    if toks and toks[0] in PRODUCER_VERBS:
        toks = toks[1:]
    return tuple(singular(t) for t in toks if t not in ("info", "details", "detail", "by"))


def qualified_tokens(field: OutputField) -> list[str]:
    """``airports[].name`` -> ``airport name``; specific names stay as they are."""
    return list(_qualified_tokens(field.name, field.container, field.tool))


@functools.lru_cache(maxsize=_TOKEN_CACHE)
def _qualified_tokens(name: str, container: str | None, tool: str) -> tuple[str, ...]:
    toks = _name_tokens(name)
    if len(toks) == 1 and toks[0] in GENERIC_NAMES:
        return _entity_tokens(container, tool) + toks
    return toks


@functools.lru_cache(maxsize=_TOKEN_CACHE)
def _singular_set(toks: tuple[str, ...]) -> frozenset[str]:
    return frozenset(map(singular, toks))


@functools.lru_cache(maxsize=_TOKEN_CACHE)
def _words(names: frozenset[str], description: str) -> frozenset[str]:
    """The words a name and a description say together (what description matching compares)."""
    return names | _text_tokens(description)


def match_param(param: ParamSpec, field: OutputField) -> FieldMatch | None:
    """How well ``field`` can fill ``param``: by name (``order_id``), by a generic name in its
    entity (``orders[].id`` -> ``order_id``), by a role of the same name (``from_account_id`` <-
    ``account_id``), or by description (``origin`` <- ``airport_code``, both IATA codes)."""
    fit = _types_fit(param, field)
    if fit == 0.0:
        return None
    ptoks, raw = _name_tokens(param.name), _name_tokens(field.name)
    ftoks = _qualified_tokens(field.name, field.container, field.tool)
    if ptoks == raw:
        return FieldMatch(param.name, field, round(1.0 * fit, 3), "same name")
    if ptoks == ftoks:
        return FieldMatch(param.name, field, round(0.9 * fit, 3), "name within its entity")
    if len(ptoks) > len(ftoks) and ptoks[-len(ftoks) :] == ftoks:
        return FieldMatch(
            param.name, field, round(ROLE_PREFIX_SCORE * fit, 3), "role of the same name"
        )
    if ptoks[-1:] == ("id",) and ftoks[-1:] == ("id",):
        return None  # ids of different entities never stand in for each other
    pnames, fnames = _singular_set(ptoks), _singular_set(ftoks)
    ptext = _words(pnames, param.description)
    ftext = _words(fnames, field.description)
    if not ptext or not ftext:
        return None
    names_meet = bool(fnames & ptext) or bool(pnames & ftext)
    similarity = len(ptext & ftext) / len(ptext | ftext)
    if names_meet and similarity >= DESCRIPTION_MIN_SIMILARITY:
        return FieldMatch(
            param.name, field, round((0.3 + 0.5 * similarity) * fit, 3), "description"
        )
    return None


def described_fields(tool: Mapping[str, Any], params: Iterable[ParamSpec]) -> list[OutputField]:
    """For a tool without an output schema: the values its name or description says it
    produces, among the parameter names of interest (``search_orders`` -> ``order_id``)."""
    name = tool_name(tool)
    toks = _singular_tokens(name)
    description = str(tool["function"].get("description") or "")
    desc_toks = _singular_tokens(description)
    out = []
    for param in params:
        ptoks = _singular_tokens(param.name)
        entity = ptoks[:-1] if ptoks[-1:] == ("id",) else ptoks
        if not entity:
            continue
        produces = bool(toks) and toks[0] in PRODUCER_VERBS and _contains(toks[1:], entity)
        mentions = any(
            w in ("return", "returns", "give", "output") for w in desc_toks
        ) and _contains(desc_toks, ptoks)
        if produces or mentions:
            out.append(
                OutputField(
                    name,
                    (param.name,),
                    param.name,
                    param.type,
                    description,
                    param.enum,
                    None,
                    described=True,
                )
            )
    return out


def _contains(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    n = len(needle)
    return any(list(haystack[i : i + n]) == list(needle) for i in range(len(haystack) - n + 1))


def _endpoint_key(server: ToolServer, key: str) -> Any:
    # the older place of what samplers read: kept by records written before ToolServer had the
    # field, and by the bundled catalog, whose server ids (and so its data) depend on it
    endpoint = server.endpoint or {}
    return endpoint.get(key) if isinstance(endpoint, Mapping) else None


def tool_returns(server: ToolServer) -> dict[str, JSONDict]:
    """The output schemas a server documents, by tool name (empty when it has none):
    ``server.returns``, else ``server.endpoint["returns"]``."""
    returns = server.returns or _endpoint_key(server, "returns")
    return dict(returns) if isinstance(returns, Mapping) else {}


def tool_phrases(server: ToolServer) -> dict[str, str]:
    """How a user asks for each tool (``{param}`` placeholders), by tool name:
    ``server.phrases``, else ``server.endpoint["phrases"]``."""
    phrases = server.phrases or _endpoint_key(server, "phrases")
    if not isinstance(phrases, Mapping):
        return {}
    return {str(k): v for k, v in phrases.items() if isinstance(v, str)}


def server_scenarios(server: ToolServer) -> list[JSONDict]:
    """Coherent sets of values a user of the server knows: ``server.scenarios``, else
    ``server.endpoint["scenarios"]`` (new lists of new dicts: callers may shuffle them)."""
    found = server.scenarios or _endpoint_key(server, "scenarios")
    if not isinstance(found, (list, tuple)):
        return []
    return [dict(s) for s in found if isinstance(s, Mapping)]


def flow_matches(
    source: Mapping[str, Any],
    returns: Mapping[str, Any] | None,
    param: ParamSpec,
    *,
    min_score: float = 0.5,
) -> list[FieldMatch]:
    """Every way ``source``'s output can fill ``param``, best first."""
    if returns:
        fields = produced_fields(tool_name(source), returns)
    else:
        fields = described_fields(source, [param])
    return field_matches(fields, param, min_score)


def field_matches(
    fields: Iterable[OutputField], param: ParamSpec, min_score: float
) -> list[FieldMatch]:
    """The ``fields`` that can fill ``param`` with at least ``min_score``, best first."""
    found = []
    for field in fields:
        match = (
            FieldMatch(param.name, field, DESCRIBED_SCORE, "described")
            if field.described
            else match_param(param, field)
        )
        if match is not None and match.score >= min_score:
            found.append(match)
    found.sort(key=lambda m: (-m.score, m.field.path))
    return found
