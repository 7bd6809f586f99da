"""What a failed LLM call raises, and what the calling stage should do about it.

* ``LLMCallFailed`` (and its subclasses) concerns one call: the stage marks the record it was
  working on failed (``status="failed"`` or ``ctx.drop(reason, id)``) and the run goes on.
* ``LLMEndpointError`` means the endpoint itself is misconfigured (bad key, unknown model, wrong
  URL): every call would fail the same way, so it is *not* an ``LLMCallFailed`` and stops the run.
"""

from __future__ import annotations

from astra_core.errors import AstraError, LLMCallFailed

# ``LLMCallFailed`` lives in the core so that a component calling any ``llm_backend`` can catch
# it without importing this plugin; it is re-exported here for the backends that raise it.
__all__ = [
    "LLMCacheMiss",
    "LLMCallFailed",
    "LLMEndpointError",
    "LLMRequestRejected",
    "LLMRetriesExhausted",
]


class LLMRetriesExhausted(LLMCallFailed):
    """Timeouts, connection errors, 429s or 5xx answers outlasted ``max_retries``."""


class LLMRequestRejected(LLMCallFailed):
    """The server refused this request (400, 413, 422...): retrying it would not help."""


class LLMCacheMiss(LLMCallFailed):
    """``cache_mode = "replay"`` and the cache holds no answer for this request."""


class LLMEndpointError(AstraError):
    """The endpoint refuses every request (401, 403, 404): a configuration error, not a record's."""

    def __init__(self, message: str, *, backend: str = "", status: int | None = None) -> None:
        self.backend = backend
        self.status = status
        where = f"llm_backend {backend!r}: " if backend else ""
        super().__init__(f"{where}{message}")
