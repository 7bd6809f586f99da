"""One chat request, the sampling parameters it runs with, and the key the cache files it under."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from astra_core.records import JSONDict, canonical_json

# Body fields a backend fills itself: a call may not override them through ``**sampling``.
RESERVED_SAMPLING = frozenset({"model", "messages", "tools", "stream"})


@attrs.frozen
class ChatRequest:
    """What ``chat_many`` takes per request: messages, tools and per-call sampling overrides."""

    messages: Sequence[Mapping[str, Any]]
    tools: Sequence[Mapping[str, Any]] | None = None
    sampling: Mapping[str, Any] = attrs.Factory(dict)

    @classmethod
    def coerce(cls, value: ChatRequest | Mapping[str, Any], index: int = 0) -> ChatRequest:
        """A ``ChatRequest`` or a mapping with ``messages`` and optional ``tools``/``sampling``."""
        if isinstance(value, ChatRequest):
            return value
        if isinstance(value, Mapping) and "messages" in value:
            extra = sorted(set(value) - {"messages", "tools", "sampling"})
            if extra:
                raise ValueError(
                    f"request {index}: unknown field {extra[0]!r}; a request has messages, tools "
                    "and sampling"
                )
            return cls(value["messages"], value.get("tools"), dict(value.get("sampling") or {}))
        raise TypeError(
            f"request {index}: expected a ChatRequest or a mapping with 'messages', "
            f"got {type(value).__name__}"
        )


def effective_sampling(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> JSONDict:
    """Defaults overridden by a call's arguments; ``None`` removes a default."""
    bad = sorted(RESERVED_SAMPLING & set(overrides))
    if bad:
        raise ValueError(f"{bad[0]!r} cannot be passed as a sampling parameter")
    merged = {**defaults, **overrides}
    return {k: v for k, v in sorted(merged.items()) if v is not None}


def cache_request(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
    sampling: Mapping[str, Any],
) -> JSONDict:
    """The part of a request that decides the answer, in plain JSON: what the cache key hashes.

    The endpoint URL and the tool-call mode are left out on purpose: moving a server or
    switching modes must not make a resumed run pay again for answers it already has.
    """
    return {
        "model": model,
        "messages": [dict(m) for m in messages],
        "tools": [dict(t) for t in tools] if tools else None,
        "sampling": dict(sorted(sampling.items())),
    }


def request_key(request: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces) of ``cache_request(...)``."""
    return hashlib.sha256(canonical_json(request).encode("utf-8")).hexdigest()
