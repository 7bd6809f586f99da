"""The ``openai-compatible`` LLM backend over real HTTP on loopback.

A hosted LLM cannot run here, so a real HTTP/1.1 server on 127.0.0.1
(``astra_llm.loopback_server``) answers with *recorded, real-shaped* responses: chat.completion
bodies and error bodies in the shapes the OpenAI API and vLLM return (copied field for field, ids
and numbers changed). Everything between the backend and the socket is real: httpx, keep-alive
connections, status codes, headers, closed sockets, timeouts.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from astra_llm.errors import (
    LLMCacheMiss,
    LLMCallFailed,
    LLMEndpointError,
    LLMRequestRejected,
    LLMRetriesExhausted,
)
from astra_llm.loopback_server import LoopbackServer, ReceivedRequest, Reply
from astra_llm.openai_http import OpenAICompatibleBackend
from astra_llm.options import BackoffOptions, OpenAICompatibleOptions
from astra_llm.response_cache import ResponseCache, seed_cache
from astra_llm.retry_policy import Backoff, retry_after_s

from astra_core.errors import ConfigError
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.protocols import ChatResponse, LLMBackend
from astra_core.registry import ComponentBuilder

# --- recorded, real-shaped answers ------------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
QUESTION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the weather in Paris?"},
]

# The OpenAI API (gpt-4o-mini), a native tool call.
OPENAI_TOOL_CALL = {
    "id": "chatcmpl-BQ3dZ3ZmPq5xX8V1jY1kLk9wq2rOe",
    "object": "chat.completion",
    "created": 1745480120,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_3mJx2Qv8YH0Zl9fQm1cN7Tq4",
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": '{"city":"Paris","unit":"celsius"}',
                        },
                    }
                ],
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 82,
        "completion_tokens": 18,
        "total_tokens": 100,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_dbaca60df0",
}

# vLLM (OpenAI-compatible server, Qwen2.5 with --tool-call-parser hermes), a native tool call.
VLLM_TOOL_CALL = {
    "id": "chatcmpl-8f0c6b1e2d6a4f0e9b7e3c55a1d2f4aa",
    "object": "chat.completion",
    "created": 1745480200,
    "model": "Qwen/Qwen2.5-7B-Instruct",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "reasoning_content": None,
                "content": None,
                "tool_calls": [
                    {
                        "id": "chatcmpl-tool-5d0b3d7c2c5e4a8f9a1f0c3b",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
            "stop_reason": None,
        }
    ],
    "usage": {
        "prompt_tokens": 250,
        "total_tokens": 271,
        "completion_tokens": 21,
        "prompt_tokens_details": None,
    },
    "prompt_logprobs": None,
    "kv_transfer_params": None,
}

# vLLM, a plain text answer.
VLLM_TEXT = {
    "id": "chatcmpl-2b9e0c77a1f34b1c8e5d6f7a8b9c0d1e",
    "object": "chat.completion",
    "created": 1745480260,
    "model": "Qwen/Qwen2.5-7B-Instruct",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "reasoning_content": None,
                "content": "It is 18°C and sunny in Paris.",
                "tool_calls": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
            "stop_reason": None,
        }
    ],
    "usage": {"prompt_tokens": 301, "total_tokens": 313, "completion_tokens": 12},
    "prompt_logprobs": None,
}

# A server without native tool calling, answering a prompt that offered tools as text
# ("parsed" mode): Hermes blocks in the content, one of them broken.
TEXT_TOOL_CALLS = {
    "id": "chatcmpl-c1d2e3f4a5b6",
    "object": "chat.completion",
    "created": 1745480300,
    "model": "local-model",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": '
                '{"city": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": "get_weather", '
                '"arguments": {"city": \n</tool_call>',
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 190, "completion_tokens": 40, "total_tokens": 230},
}

# A non-conforming but seen shape: arguments as an object, no call id, finish_reason "stop".
LOOSE_TOOL_CALL = {
    "id": "chatcmpl-517",
    "object": "chat.completion",
    "created": 1745480400,
    "model": "llama3.1:8b",
    "system_fingerprint": "fp_ollama",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
                ],
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 155, "completion_tokens": 20, "total_tokens": 175},
}

OPENAI_RATE_LIMIT = {
    "error": {
        "message": "Rate limit reached for gpt-4o-mini in organization org-x on requests per min "
        "(RPM): Limit 3, Used 3, Requested 1. Please try again in 1s.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}
OPENAI_CONTEXT_TOO_LONG = {
    "error": {
        "message": "This model's maximum context length is 128000 tokens. However, your messages "
        "resulted in 130001 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}
VLLM_BAD_REQUEST = {
    "object": "error",
    "message": "This model's maximum context length is 32768 tokens. However, you requested "
    "40000 tokens (8000 in the messages, 32000 in the completion). Please reduce the length "
    "of the messages or completion.",
    "type": "BadRequestError",
    "param": None,
    "code": 400,
}
OPENAI_BAD_KEY = {
    "error": {
        "message": "Incorrect API key provided: sk-abc***xyz. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}
SERVER_ERROR = {"error": {"message": "The server had an error while processing your request."}}


# --- helpers ----------------------------------------------------------------------------------

FAST_BACKOFF = BackoffOptions(base_s=0.01, factor=2.0, max_s=0.05, jitter=0.5)


def backend(server: LoopbackServer, **options: Any) -> OpenAICompatibleBackend:
    options.setdefault("backoff", FAST_BACKOFF)
    return OpenAICompatibleBackend(
        OpenAICompatibleOptions(model="test-model", base_url=server.base_url, **options)
    )


def script(*replies: Reply) -> Callable[[ReceivedRequest], Reply]:
    """Answer with ``replies`` in order, repeating the last one."""
    state = {"n": 0}
    lock = threading.Lock()

    def handler(_: ReceivedRequest) -> Reply:
        with lock:
            i = min(state["n"], len(replies) - 1)
            state["n"] += 1
        return replies[i]

    return handler


@pytest.fixture
def serve() -> Iterator[Callable[..., LoopbackServer]]:
    servers: list[LoopbackServer] = []

    def start(handler: Callable[[ReceivedRequest], Any]) -> LoopbackServer:
        server = LoopbackServer(handler).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


# --- answers ----------------------------------------------------------------------------------


def test_native_tool_call_round_trip(serve, monkeypatch):
    monkeypatch.setenv("ASTRA_TEST_LLM_KEY", "sk-test-123")
    server = serve(script(Reply(OPENAI_TOOL_CALL)))
    with backend(
        server, api_key_env="ASTRA_TEST_LLM_KEY", sampling={"temperature": 0.2, "max_tokens": 64}
    ) as llm:
        assert isinstance(llm, LLMBackend)
        answer = llm.chat(QUESTION, tools=[WEATHER_TOOL], temperature=0.0, seed=7)
    assert answer.finish_reason == "tool_calls"
    assert answer.message == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_3mJx2Qv8YH0Zl9fQm1cN7Tq4",
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "arguments": '{"city":"Paris","unit":"celsius"}',
                },
            }
        ],
    }
    assert answer.usage == {"prompt_tokens": 82, "completion_tokens": 18, "total_tokens": 100}
    (sent,) = server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test-123"
    assert sent.body == {
        "model": "test-model",
        "messages": QUESTION,
        "tools": [WEATHER_TOOL],
        "temperature": 0.0,  # the call's value wins over the default
        "max_tokens": 64,
        "seed": 7,
        "stream": False,
    }


def test_vllm_and_loose_shapes_are_normalised(serve):
    server = serve(script(Reply(VLLM_TOOL_CALL), Reply(VLLM_TEXT), Reply(LOOSE_TOOL_CALL)))
    with backend(server) as llm:
        vllm_call = llm.chat(QUESTION, tools=[WEATHER_TOOL])
        text = llm.chat(QUESTION)
        loose = llm.chat(QUESTION, tools=[WEATHER_TOOL])
        again = llm.chat(QUESTION, tools=[WEATHER_TOOL])
    assert vllm_call.message["tool_calls"][0]["id"] == "chatcmpl-tool-5d0b3d7c2c5e4a8f9a1f0c3b"
    assert set(vllm_call.message) == {"role", "content", "tool_calls"}  # reasoning_content: None
    assert text.message == {"role": "assistant", "content": "It is 18°C and sunny in Paris."}
    assert text.finish_reason == "stop"
    call = loose.message["tool_calls"][0]
    assert loose.finish_reason == "tool_calls"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert again.message == loose.message  # the repaired id is derived, not random


def test_parsed_mode_renders_tools_as_text_and_parses_calls(serve):
    server = serve(script(Reply(TEXT_TOOL_CALLS)))
    history = [
        *QUESTION,
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Lyon"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 17}'},
        {"role": "user", "content": "And Paris?"},
    ]
    with backend(server, tool_call_mode="parsed") as llm:
        answer = llm.chat(history, tools=[WEATHER_TOOL])
    sent = server.requests[0].body
    assert "tools" not in sent
    system, user, assistant, tool_result, follow_up = sent["messages"]
    assert system["role"] == "system"
    assert system["content"].startswith("You are a helpful assistant.\n\n# Tools")
    assert json.dumps(WEATHER_TOOL) in system["content"] and "<tools>" in system["content"]
    assert assistant == {
        "role": "assistant",
        "content": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lyon"}}\n'
        "</tool_call>",
    }
    assert tool_result == {
        "role": "user",
        "content": '<tool_response>\n{"temp": 17}\n</tool_response>',
    }
    assert user["content"] == QUESTION[1]["content"] and follow_up["content"] == "And Paris?"
    assert answer.finish_reason == "tool_calls"
    (call,) = answer.message["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    # The broken block stays in the text: the agent and the data see what the model wrote.
    assert answer.message["content"].startswith("Let me check.")
    assert '"arguments": {"city": \n</tool_call>' in answer.message["content"]


def test_parsed_mode_with_a_tool_call_parser_component(serve):
    registry = load_plugins().registry
    if "hermes" not in registry.names("tool_call_parser"):
        pytest.skip("the hermes tool_call_parser plugin is not installed")
    server = serve(script(Reply(TEXT_TOOL_CALLS)))
    builder = ComponentBuilder(registry)
    spec = ComponentSpec(
        "openai-compatible",
        {
            "model": "m",
            "base_url": server.base_url,
            "tool_call_mode": "parsed",
            "tool_call_parser": "hermes",
        },
    )
    llm = builder.build("llm_backend", spec)
    try:
        answer = llm.chat(QUESTION, tools=[WEATHER_TOOL])
    finally:
        llm.close()
    names = [c["function"]["name"] for c in answer.message["tool_calls"]]
    assert names[0] == "get_weather"


# --- failures and retries ---------------------------------------------------------------------


def test_429_with_retry_after_is_honoured(serve):
    seen: list[float] = []

    def handler(request: ReceivedRequest) -> Reply:
        seen.append(time.monotonic())
        if len(seen) == 1:
            return Reply(OPENAI_RATE_LIMIT, status=429, headers={"Retry-After": "1"})
        return Reply(VLLM_TEXT)

    server = serve(handler)
    # Backoff alone would wait ~0 s: the 1 s gap can only come from Retry-After.
    with backend(server, backoff=BackoffOptions(base_s=0.0, jitter=0.0)) as llm:
        answer = llm.chat(QUESTION)
        assert llm.stats["retries"] == 1 and llm.stats["http_calls"] == 2
    assert answer.message["content"].startswith("It is 18")
    assert seen[1] - seen[0] >= 0.95


def test_retry_after_is_capped_by_max_wait(serve):
    limited = Reply(OPENAI_RATE_LIMIT, status=429, headers={"Retry-After": "3600"})
    server = serve(script(limited, Reply(VLLM_TEXT)))
    start = time.monotonic()
    with backend(server, max_wait_s=0.2) as llm:
        llm.chat(QUESTION)
    assert 0.2 <= time.monotonic() - start < 2.0


def test_5xx_then_success(serve):
    server = serve(
        script(
            Reply(SERVER_ERROR, status=500),
            Reply(b"<html>502 Bad Gateway</html>", status=502),
            Reply(VLLM_TOOL_CALL),
        )
    )
    with backend(server, max_retries=3) as llm:
        answer = llm.chat(QUESTION, tools=[WEATHER_TOOL])
        assert llm.stats["retries"] == 2 and llm.stats["failures"] == 0
    assert answer.finish_reason == "tool_calls"
    assert server.count == 3


def test_5xx_forever_gives_up_after_max_retries(serve):
    server = serve(script(Reply(SERVER_ERROR, status=503)))
    with backend(server, max_retries=2) as llm:
        with pytest.raises(LLMRetriesExhausted) as err:
            llm.chat(QUESTION)
        assert llm.stats["failures"] == 1
    assert isinstance(err.value, LLMCallFailed)
    assert err.value.attempts == 3 and server.count == 3
    message = str(err.value)
    assert "gave up after 3 attempts" in message and "HTTP 503" in message
    assert "The server had an error" in message and "openai-compatible" in message


@pytest.mark.parametrize("body", [OPENAI_CONTEXT_TOO_LONG, VLLM_BAD_REQUEST])
def test_400_fails_at_once_with_the_servers_message(serve, body):
    server = serve(script(Reply(body, status=400)))
    with backend(server, max_retries=5) as llm, pytest.raises(LLMRequestRejected) as err:
        llm.chat(QUESTION)
    assert server.count == 1  # no retry
    assert err.value.status == 400 and isinstance(err.value, LLMCallFailed)
    assert "maximum context length" in str(err.value) and "HTTP 400" in str(err.value)


def test_401_is_an_endpoint_error_that_stops_the_run(serve, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server = serve(script(Reply(OPENAI_BAD_KEY, status=401)))
    with backend(server) as llm, pytest.raises(LLMEndpointError) as err:
        llm.chat(QUESTION)
    assert not isinstance(err.value, LLMCallFailed)  # a misconfiguration fails every record
    assert "Incorrect API key" in str(err.value)
    assert "set the environment variable OPENAI_API_KEY" in str(err.value)


def test_timeout_is_retried_then_fails(serve):
    server = serve(script(Reply(VLLM_TEXT, delay_s=3.0)))
    start = time.monotonic()
    llm = backend(server, timeout_s=0.2, max_retries=1)
    with llm, pytest.raises(LLMRetriesExhausted) as err:
        llm.chat(QUESTION)
    assert time.monotonic() - start < 2.0
    assert "no answer within timeout_s=0.2" in str(err.value)
    assert server.count == 2


def test_malformed_200_is_retried_then_fails(serve):
    server = serve(script(Reply({"object": "chat.completion", "choices": []})))
    expected = "malformed answer: the answer has no choices"
    with backend(server, max_retries=1) as llm, pytest.raises(LLMRetriesExhausted, match=expected):
        llm.chat(QUESTION)
    assert server.count == 2


def test_server_dies_mid_run_then_comes_back(serve):
    """The first four answers come at once, the next ones hang until the server is killed:
    those fail after bounded retries (connection refused), the batch still returns, and the
    same backend works again once the server is back on the same port."""
    answered = threading.Semaphore(0)

    def handler(request: ReceivedRequest) -> Reply:
        n = int(request.body["messages"][-1]["content"])
        if n < 4:
            answered.release()
            return Reply(VLLM_TEXT)
        return Reply(VLLM_TEXT, delay_s=30.0)

    server = serve(handler)
    requests = [{"messages": [{"role": "user", "content": str(i)}]} for i in range(8)]
    with backend(server, max_concurrency=4, max_retries=2) as llm:
        outcome: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: outcome.setdefault("r", llm.chat_many(requests)))
        worker.start()
        for _ in range(4):
            assert answered.acquire(timeout=10)
        deadline = time.monotonic() + 10
        while server.in_flight < 4 and time.monotonic() < deadline:  # the hanging four
            time.sleep(0.01)
        server.stop()
        worker.join(timeout=20)
        assert not worker.is_alive(), "chat_many hung after the server died"
        results = outcome["r"]
        assert all(isinstance(r, ChatResponse) for r in results[:4])
        failed = results[4:]
        assert all(isinstance(r, LLMRetriesExhausted) for r in failed), failed
        assert all(r.attempts == 3 and "connection error" in str(r) for r in failed)
        assert llm.stats["failures"] == 4
        server.start()  # back on the same port
        assert llm.chat([{"role": "user", "content": "0"}]).message["content"].startswith("It is")


# --- concurrency ------------------------------------------------------------------------------


def test_chat_many_keeps_max_concurrency_in_flight(serve):
    server = serve(script(Reply(VLLM_TEXT, delay_s=0.2)))
    requests = [{"messages": [{"role": "user", "content": f"q{i}"}]} for i in range(24)]
    with backend(server, max_concurrency=6) as llm:
        start = time.monotonic()
        results = llm.chat_many(requests)
        elapsed = time.monotonic() - start
    assert len(results) == 24 and all(isinstance(r, ChatResponse) for r in results)
    assert server.max_in_flight == 6
    assert elapsed < 24 * 0.2 / 2  # concurrent, not one by one (4 rounds of 0.2 s ideally)
    sent = sorted(r.body["messages"][0]["content"] for r in server.requests)
    assert sent == sorted(f"q{i}" for i in range(24))  # each request exactly once


def test_sync_calls_from_many_threads_share_the_bound(serve):
    server = serve(script(Reply(VLLM_TEXT, delay_s=0.15)))
    with backend(server, max_concurrency=3) as llm, ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda i: llm.chat([{"role": "user", "content": f"t{i}"}]), range(16))
        )
    assert len(answers) == 16 and server.max_in_flight == 3


def test_achat_from_another_event_loop(serve):
    server = serve(script(Reply(VLLM_TEXT, delay_s=0.15)))
    llm = backend(server, max_concurrency=2)

    async def main() -> list[ChatResponse]:
        calls = [llm.achat([{"role": "user", "content": f"a{i}"}]) for i in range(6)]
        return list(await asyncio.gather(*calls))

    try:
        answers = asyncio.run(main())
        batch = asyncio.run(llm.achat_many([{"messages": QUESTION}]))
    finally:
        llm.close()
    assert len(answers) == 6 and server.max_in_flight == 2
    assert isinstance(batch[0], ChatResponse)


def test_chat_many_raises_when_asked(serve):
    server = serve(script(Reply(VLLM_BAD_REQUEST, status=400)))
    with backend(server) as llm:
        results = llm.chat_many([{"messages": QUESTION}])
        assert isinstance(results[0], LLMRequestRejected)
        with pytest.raises(LLMRequestRejected):
            llm.chat_many([{"messages": QUESTION}], return_exceptions=False)
        with pytest.raises(ValueError, match="unknown field 'tool'"):
            llm.chat_many([{"messages": QUESTION, "tool": []}])


# --- the response cache -----------------------------------------------------------------------


def test_cache_hit_avoids_the_http_call(serve, tmp_path):
    server = serve(script(Reply(OPENAI_TOOL_CALL)))
    with backend(server, cache_dir=str(tmp_path / "cache")) as llm:
        first = llm.chat(QUESTION, tools=[WEATHER_TOOL], temperature=0.0)
        second = llm.chat(QUESTION, tools=[WEATHER_TOOL], temperature=0.0)
        assert server.count == 1 and second == first
        assert llm.stats["cache_hits"] == 1 and llm.stats["cache_misses"] == 1
        llm.chat(QUESTION, tools=[WEATHER_TOOL], temperature=0.5)  # other sampling: a new call
        llm.chat(QUESTION, temperature=0.0)  # no tools: a new call
        assert server.count == 3
    # A re-run (a new backend on the same directory) pays nothing, even on another port.
    other = serve(script(Reply(VLLM_TEXT)))
    with backend(other, cache_dir=str(tmp_path / "cache")) as rerun:
        assert rerun.chat(QUESTION, tools=[WEATHER_TOOL], temperature=0.0) == first
    assert other.count == 0
    entries = sorted((tmp_path / "cache").glob("??/*.json"))
    assert len(entries) == 3
    entry = json.loads(entries[0].read_text())
    assert entry["format"] == "astra-llm-cache" and entry["version"] == 1
    assert entries[0].stem == entry["key"] and entries[0].parent.name == entry["key"][:2]
    assert set(entry["request"]) == {"model", "messages", "tools", "sampling"}


def test_identical_requests_in_one_batch_pay_once(serve, tmp_path):
    server = serve(script(Reply(VLLM_TEXT, delay_s=0.1)))
    same = [{"messages": QUESTION}] * 5
    with backend(server, cache_dir=str(tmp_path / "c"), max_concurrency=5) as llm:
        results = llm.chat_many(same)
        assert llm.stats["shared"] == 4
    assert server.count == 1 and all(r == results[0] for r in results)
    with backend(server, max_concurrency=5) as uncached:
        uncached.chat_many(same)
    assert server.count == 6  # without a cache each request is its own call


def test_seeded_cache_replays_without_a_server(tmp_path):
    """Recorded (request, response) pairs replayed through the cache: how tests of LLM-driven
    stages run without an LLM. Nothing listens on the URL, so any HTTP call would fail."""
    pairs = [
        ({"messages": QUESTION, "tools": [WEATHER_TOOL]}, OPENAI_TOOL_CALL),
        ({"messages": QUESTION, "sampling": {"seed": 1}}, VLLM_TEXT),
    ]
    keys = seed_cache(tmp_path / "rec", pairs, model="recorded", sampling={"temperature": 0.0})
    assert len(set(keys)) == 2
    options = OpenAICompatibleOptions(
        model="recorded",
        base_url="http://127.0.0.1:9/v1",
        sampling={"temperature": 0.0},
        cache_dir=str(tmp_path / "rec"),
        cache_mode="replay",
    )
    with OpenAICompatibleBackend(options) as llm:
        call = llm.chat(QUESTION, tools=[WEATHER_TOOL])
        text = llm.chat(QUESTION, seed=1)
        with pytest.raises(LLMCacheMiss, match="does not exist"):
            llm.chat(QUESTION, seed=2)
        assert llm.stats["http_calls"] == 0 and llm.stats["cache_hits"] == 2
        llm.seed_cache([({"messages": QUESTION, "sampling": {"seed": 2}}, VLLM_TOOL_CALL)])
        assert llm.chat(QUESTION, seed=2).finish_reason == "tool_calls"
    assert call.message["tool_calls"][0]["function"]["name"] == "get_weather"
    assert text.message["content"].startswith("It is 18")


def test_refresh_mode_pays_again_and_rewrites(serve, tmp_path):
    server = serve(script(Reply(VLLM_TEXT), Reply(VLLM_TOOL_CALL)))
    with backend(server, cache_dir=str(tmp_path / "c")) as llm:
        llm.chat(QUESTION)
    with backend(server, cache_dir=str(tmp_path / "c"), cache_mode="refresh") as llm:
        fresh = llm.chat(QUESTION)
    with backend(server, cache_dir=str(tmp_path / "c")) as llm:
        assert llm.chat(QUESTION) == fresh
    assert server.count == 2 and fresh.finish_reason == "tool_calls"


def test_failed_calls_are_not_cached(serve, tmp_path):
    server = serve(script(Reply(VLLM_BAD_REQUEST, status=400), Reply(VLLM_TEXT)))
    with backend(server, cache_dir=str(tmp_path / "c")) as llm:
        with pytest.raises(LLMRequestRejected):
            llm.chat(QUESTION)
        assert llm.chat(QUESTION).finish_reason == "stop"
    assert server.count == 2


_WRITER = """
import sys
from astra_core.protocols import ChatResponse
from astra_llm.response_cache import ResponseCache
cache = ResponseCache(sys.argv[1])
blob = "x" * 2_000_000  # big entries: a non-atomic write would be caught half-done
i = 0
while True:
    key = f"{i:064x}"
    cache.put(key, {"i": i}, ChatResponse({"role": "assistant", "content": blob}))
    print(i, flush=True)
    i += 1
"""


def test_cache_writes_survive_a_kill_mid_write(tmp_path):
    directory = tmp_path / "cache"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(directory)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    for _ in range(3):  # let it write a few, then kill it while it writes the next ones
        proc.stdout.readline()
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    cache = ResponseCache(directory)
    entries = list(directory.glob("??/*.json"))
    assert len(entries) >= 3
    for path in entries:
        answer = cache.get(path.stem)
        assert answer is not None, f"{path} is not a whole entry"
        assert len(answer.message["content"]) == 2_000_000
    assert cache.hits == len(entries) and len(cache) == len(entries)


def test_unreadable_entry_is_a_miss_and_gets_rewritten(serve, tmp_path):
    server = serve(script(Reply(VLLM_TEXT)))
    with backend(server, cache_dir=str(tmp_path / "c")) as llm:
        llm.chat(QUESTION)
        (path,) = (tmp_path / "c").glob("??/*.json")
        path.write_text("{ not json")
        assert llm.chat(QUESTION).finish_reason == "stop"
    assert server.count == 2 and json.loads(path.read_text())["format"] == "astra-llm-cache"


# --- options, registration, pieces -------------------------------------------------------------


def test_built_through_the_plugin_registry(tmp_path):
    builder = ComponentBuilder(load_plugins().registry, seed=3, workdir=tmp_path)
    llm = builder.build(
        "llm_backend",
        ComponentSpec(
            "openai-compatible",
            {
                "model": "m",
                "cache_dir": "llm-cache",
                "backoff": {"base_s": 0.1, "jitter": 0.0},
                "sampling": {"temperature": 0.7},
            },
        ),
    )
    assert isinstance(llm, OpenAICompatibleBackend) and isinstance(llm, LLMBackend)
    assert llm.cache is not None and llm.cache.directory == tmp_path / "llm-cache"
    assert llm.options.backoff.base_s == 0.1 and llm.options.sampling == {"temperature": 0.7}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"model": "m", "api_key_env": "sk-proj-abc123-secret"}, "not the key itself"),
        ({"model": "m", "api_key": "sk-1"}, "unknown option 'api_key'"),
        ({"model": "m", "tool_call_mode": "magic"}, "expected one of 'native', 'parsed'"),
        ({"model": "m", "max_concurrency": 0}, "max_concurrency must be > 0"),
        ({"model": "m", "backoff": {"jitter": 2.0}}, "jitter must be within"),
        ({"model": "m", "tool_call_parser": "no-such-parser"}, "unknown tool_call_parser"),
        ({}, "missing required option 'model'"),
    ],
)
def test_bad_options_are_config_errors(table, message):
    builder = ComponentBuilder(load_plugins().registry)
    with pytest.raises(ConfigError, match=message):
        builder.build("llm_backend", ComponentSpec("openai-compatible", table), key="llm")


def test_reserved_sampling_names_are_refused(serve):
    server = serve(script(Reply(VLLM_TEXT)))
    with backend(server) as llm:
        with pytest.raises(ValueError, match="'model' cannot be passed"):
            llm.chat(QUESTION, model="other")
        with pytest.raises(ValueError, match="n > 1"):
            llm.chat(QUESTION, n=3)
    assert server.count == 0


def test_backoff_is_exponential_bounded_and_seeded():
    import random

    options = BackoffOptions(base_s=1.0, factor=2.0, max_s=5.0, jitter=0.5)
    a = [Backoff(options, random.Random(42)).delay(n) for n in range(1, 7)]
    b = [Backoff(options, random.Random(42)).delay(n) for n in range(1, 7)]
    c = [Backoff(options, random.Random(43)).delay(n) for n in range(1, 7)]
    assert a == b and a != c
    caps = [1, 2, 4, 5, 5, 5]
    assert all(cap * 0.5 <= d <= cap for d, cap in zip(a, caps, strict=True))
    no_jitter = Backoff(BackoffOptions(base_s=0.5, jitter=0.0), random.Random(0))
    assert [no_jitter.delay(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]


def test_retry_after_forms():
    assert retry_after_s({"Retry-After": "7"}) == 7.0
    assert retry_after_s({"retry-after-ms": "250", "Retry-After": "7"}) == 0.25
    date = "Wed, 21 Oct 2015 07:28:10 GMT"
    now = time.mktime(time.strptime("2015-10-21 07:28:00", "%Y-%m-%d %H:%M:%S")) - time.timezone
    assert retry_after_s({"Retry-After": date}, now=now) == pytest.approx(10.0)
    assert retry_after_s({"Retry-After": "soon"}) is None and retry_after_s({}) is None


def test_records_are_not_shared_between_calls(serve):
    """A caller mutating an answer must not change what the next call or the cache returns."""
    server = serve(script(Reply(copy.deepcopy(VLLM_TEXT))))
    with backend(server) as llm:
        first = llm.chat(QUESTION)
        first.message["content"] = "changed"
        assert llm.chat(QUESTION).message["content"].startswith("It is 18")


def test_backend_thread_goes_away_on_close(serve):
    server = serve(script(Reply(VLLM_TEXT)))
    llm = backend(server)
    llm.chat(QUESTION)
    runner = llm._runner
    assert runner is not None and runner.thread.is_alive()
    llm.close()
    assert not runner.thread.is_alive()
    llm.chat(QUESTION)  # a closed backend starts again on demand
    llm.close()


def test_cache_directory_is_plain_files(tmp_path: Path):
    """The documented layout, written by the public helper, read back by a new cache."""
    (key,) = seed_cache(tmp_path, [({"messages": QUESTION}, VLLM_TEXT)], model="m")
    path = tmp_path / key[:2] / f"{key}.json"
    data = json.loads(path.read_text())
    assert data["request"] == {"model": "m", "messages": QUESTION, "tools": None, "sampling": {}}
    assert data["response"]["message"]["content"].startswith("It is 18")
    assert ResponseCache(tmp_path).get(key) == ChatResponse(**data["response"])
