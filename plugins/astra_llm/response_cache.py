"""A response cache on disk: a re-run or a resumed run never pays twice for the same call.

Layout: one JSON file per request, ``<cache_dir>/<key[:2]>/<key>.json``, where ``key`` is the
SHA-256 of the canonical JSON (sorted keys, no whitespace, UTF-8) of::

    {"model": str, "messages": [...], "tools": [...] | null, "sampling": {...}}

``sampling`` holds the *effective* parameters (the backend's defaults overridden by the call's
keyword arguments, ``None`` values removed). Each file holds::

    {"format": "astra-llm-cache", "version": 1, "key": "<hex>", "backend": "openai-compatible",
     "created_at": "2025-...Z", "request": {...the hashed object...},
     "response": {"message": {...}, "finish_reason": "stop", "usage": {...}}}

Files are written to a temporary name in the same directory, fsynced, then renamed over the
final name, so a run killed mid-write leaves either no entry or a whole one (stray ``*.tmp``
files are ignored). Failed calls are never cached. To draw several different samples of the
same prompt, pass a distinguishing sampling parameter (``seed=i``): it is part of the key.

Tests of LLM-driven stages replay recorded answers through this cache: ``seed_cache(...)``
writes (request, response) pairs, and ``cache_mode = "replay"`` makes any miss an error.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs

from astra_core.protocols import ChatResponse
from astra_core.records import JSONDict
from astra_llm.chat_request import cache_request, effective_sampling, request_key
from astra_llm.openai_messages import response_from_json, response_to_json

log = logging.getLogger("astra.llm")

FORMAT = "astra-llm-cache"
VERSION = 1


class ResponseCache:
    """Get and put ``ChatResponse``s by request key; counts hits, misses and writes."""

    def __init__(self, directory: str | Path, *, backend: str = "") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.backend = backend
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self._lock = threading.Lock()

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> ChatResponse | None:
        path = self.path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or data.get("key") != key:
                raise ValueError("not an entry of this cache, or filed under another key")
            # marked, so callers can count what the model did not have to answer
            response = attrs.evolve(response_from_json(data["response"]), cached=True)
        except FileNotFoundError:
            response = None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Atomic writes make this unlikely (a disk fault, a hand edit): call again, rewrite.
            log.warning("LLM cache entry %s is unreadable (%s); treating it as a miss", path, exc)
            response = None
        with self._lock:
            if response is None:
                self.misses += 1
            else:
                self.hits += 1
        return response

    def put(self, key: str, request: Mapping[str, Any], response: ChatResponse) -> Path:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {
            "format": FORMAT,
            "version": VERSION,
            "key": key,
            "backend": self.backend,
            "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "request": dict(request),
            "response": response_to_json(response),
        }
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(entry, fh, ensure_ascii=False, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        with self._lock:
            self.writes += 1
        return path

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("??/*.json"))

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "cache_hits": self.hits,
                "cache_misses": self.misses,
                "cache_writes": self.writes,
            }


def seed_cache(
    cache_dir: str | Path,
    pairs: Iterable[tuple[Mapping[str, Any], Mapping[str, Any] | ChatResponse]],
    *,
    model: str,
    sampling: Mapping[str, Any] | None = None,
    backend: str = "seeded",
) -> list[str]:
    """Write recorded answers into a cache so a backend with the same ``model`` and default
    ``sampling`` replays them instead of calling a server. Returns the keys written.

    Each request is ``{"messages": [...], "tools": [...]?, "sampling": {...}?}`` (its sampling
    overrides the defaults, as a call's keyword arguments would). Each response is a
    ``ChatResponse``, a stored ``{"message", "finish_reason", "usage"}`` or a raw
    ``chat.completion`` object as a server returned it (normalised like a live answer).
    """
    cache = ResponseCache(cache_dir, backend=backend)
    keys = []
    for index, (request, response) in enumerate(pairs):
        if "messages" not in request:
            raise ValueError(f"seed_cache: request {index} has no 'messages'")
        body: JSONDict = cache_request(
            model,
            request["messages"],
            request.get("tools"),
            effective_sampling(sampling or {}, request.get("sampling") or {}),
        )
        if not isinstance(response, ChatResponse):
            try:
                response = response_from_json(response)
            except ValueError as exc:
                raise ValueError(f"seed_cache: response {index}: {exc}") from exc
        key = request_key(body)
        cache.put(key, body, response)
        keys.append(key)
    return keys
