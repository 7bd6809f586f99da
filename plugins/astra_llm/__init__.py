"""LLM backends: OpenAI-compatible HTTP (async, bounded, retried, cached) and local models."""

from astra_llm.errors import (
    LLMCacheMiss,
    LLMCallFailed,
    LLMEndpointError,
    LLMRequestRejected,
    LLMRetriesExhausted,
)

__all__ = [
    "LLMCacheMiss",
    "LLMCallFailed",
    "LLMEndpointError",
    "LLMRequestRejected",
    "LLMRetriesExhausted",
]
