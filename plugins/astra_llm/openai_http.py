"""The ``openai-compatible`` LLM backend: chat completions over HTTP (vLLM, SGLang, Ollama,
``transformers serve``, hosted APIs).

Every call of one backend runs on one event loop in a daemon thread, so ``max_concurrency``
bounds the requests in flight whether they come from ``chat`` (any number of threads),
``achat`` (any event loop) or ``chat_many``. A call is retried, with exponential backoff and
seeded jitter, on timeouts, connection errors, 408/409/429 and 5xx answers (a ``Retry-After``
or ``retry-after-ms`` header sets the wait), at most ``max_retries`` times; then it raises
``LLMRetriesExhausted``. Other 4xx answers raise ``LLMRequestRejected`` at once with the
server's message; 401/403/404 raise ``LLMEndpointError`` (see ``astra_llm.errors``).

A stage calls the backend per record and catches ``LLMCallFailed``: that record is marked failed
(with the exception's message as the reason) and the run goes on; the backend stays usable.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import json
import logging
import os
import random
import sys
import threading
import weakref
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from astra_core.protocols import ChatResponse, ToolCallParser
from astra_core.records import JSONDict
from astra_llm.chat_request import ChatRequest, cache_request, effective_sampling, request_key
from astra_llm.errors import (
    LLMCacheMiss,
    LLMCallFailed,
    LLMEndpointError,
    LLMRequestRejected,
    LLMRetriesExhausted,
)
from astra_llm.hermes_format import format_hermes, parse_hermes
from astra_llm.openai_messages import (
    messages_with_text_tools,
    response_from_completion,
    response_from_text,
)
from astra_llm.options import OpenAICompatibleOptions
from astra_llm.response_cache import ResponseCache, seed_cache
from astra_llm.retry_policy import ENDPOINT_STATUSES, Backoff, is_retryable, retry_after_s

log = logging.getLogger("astra.llm")
T = TypeVar("T")

NAME = "openai-compatible"


class _LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout=5)
            if not self.thread.is_alive():
                self.loop.close()


async def _within(seconds: float, coro: Coroutine[Any, Any, T]) -> T:
    """``coro`` with a deadline on its whole duration (httpx's timeouts are per read/write)."""
    if sys.version_info >= (3, 11):  # no extra task per request, unlike wait_for
        async with asyncio.timeout(seconds):
            return await coro
    return await asyncio.wait_for(coro, seconds)


CONFIG_DIR = "{config_dir}"


def resolve_cache_dir(
    cache_dir: str | None, workdir: str | Path, config_file: str | None = None
) -> Path | None:
    """Where the cache lives: ``{config_dir}`` is the run config's directory (answers shipped
    beside a config); other relative paths are under ``workdir`` (the stage's directory)."""
    if cache_dir is None:
        return None
    if CONFIG_DIR in cache_dir:
        base = Path(config_file).resolve().parent if config_file else Path.cwd()
        cache_dir = cache_dir.replace(CONFIG_DIR, str(base))
    path = Path(cache_dir).expanduser()
    return path if path.is_absolute() else Path(workdir) / path


def server_message(response: httpx.Response) -> str:
    """The error text a server put in its answer (OpenAI, vLLM, FastAPI or plain-text shapes)."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(data, Mapping):
        error = data.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])[:500]
        for value in (error, data.get("detail"), data.get("message")):
            if value:
                return (value if isinstance(value, str) else json.dumps(value))[:500]
    return json.dumps(data)[:500]


class OpenAICompatibleBackend:
    """Chat completions from an OpenAI-compatible server; see the module docstring."""

    def __init__(
        self,
        options: OpenAICompatibleOptions,
        *,
        rng: random.Random | None = None,
        workdir: str | Path = ".",
        parser: ToolCallParser | None = None,
        config_file: str | None = None,
    ) -> None:
        self.options = options
        self.endpoint = options.base_url.rstrip("/") + "/chat/completions"
        self._backoff = Backoff(options.backoff, rng or random.Random(0))
        self._parser = parser
        cache_dir = resolve_cache_dir(options.cache_dir, workdir, config_file)
        self.cache = ResponseCache(cache_dir, backend=NAME) if cache_dir else None
        self._counts = {"requests": 0, "http_calls": 0, "retries": 0, "failures": 0, "shared": 0}
        self._lock = threading.Lock()
        self._runner: _LoopThread | None = None
        # Owned by the runner's loop, created there on first use.
        self._client: httpx.AsyncClient | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._pending: dict[str, asyncio.Future[ChatResponse]] = {}

    # -- public API ----------------------------------------------------------------------------

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        **sampling: Any,
    ) -> ChatResponse:
        """One chat completion; raises ``LLMCallFailed`` (the record fails, the run goes on)."""
        return self._run_sync(self._achat(ChatRequest(messages, tools, sampling)))

    async def achat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        **sampling: Any,
    ) -> ChatResponse:
        """``chat`` for asyncio code; usable from any event loop."""
        return await self._run_async(self._achat(ChatRequest(messages, tools, sampling)))

    def chat_many(
        self,
        requests: Sequence[ChatRequest | Mapping[str, Any]],
        *,
        return_exceptions: bool = True,
    ) -> list[ChatResponse | LLMCallFailed]:
        """Run all requests, at most ``max_concurrency`` at once; answers in request order.

        A request that fails for good leaves its ``LLMCallFailed`` in its slot (or, with
        ``return_exceptions=False``, the first one is raised once all have finished).
        """
        batch = [ChatRequest.coerce(r, i) for i, r in enumerate(requests)]
        return self._run_sync(self._many(batch, return_exceptions))

    async def achat_many(
        self,
        requests: Sequence[ChatRequest | Mapping[str, Any]],
        *,
        return_exceptions: bool = True,
    ) -> list[ChatResponse | LLMCallFailed]:
        batch = [ChatRequest.coerce(r, i) for i, r in enumerate(requests)]
        return await self._run_async(self._many(batch, return_exceptions))

    def seed_cache(
        self, pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any] | ChatResponse]]
    ) -> list[str]:
        """Pre-fill this backend's cache with recorded answers (see ``response_cache``)."""
        if self.cache is None:
            raise ValueError(f"llm_backend {NAME!r}: seed_cache needs the cache_dir option")
        return seed_cache(
            self.cache.directory,
            pairs,
            model=self.options.model,
            sampling=self.options.sampling,
            backend=NAME,
        )

    @property
    def stats(self) -> dict[str, int]:
        with self._lock:
            counts = dict(self._counts)
        if self.cache is not None:
            counts.update(self.cache.stats())
        return counts

    def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        client = self._client
        if client is not None and runner.loop.is_running():
            try:
                runner.submit(client.aclose()).result(timeout=5)
            except Exception as exc:  # closing is best effort; the loop goes away regardless
                log.debug("closing the HTTP client failed: %s", exc)
        self._client = None
        self._semaphore = None
        runner.stop()

    def __enter__(self) -> OpenAICompatibleBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OpenAICompatibleBackend(model={self.options.model!r}, endpoint={self.endpoint!r})"

    # -- running on the backend's loop ---------------------------------------------------------

    def _ensure_runner(self) -> _LoopThread:
        with self._lock:
            if self._runner is None:
                self._runner = _LoopThread(f"astra-llm-{self.options.model}")
                # Stop the thread when the backend is dropped without close().
                weakref.finalize(self, self._runner.stop)
            return self._runner

    def _run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        runner = self._ensure_runner()
        if threading.current_thread() is runner.thread:
            coro.close()
            raise RuntimeError("chat() was called on the backend's own event loop; use achat()")
        future = runner.submit(coro)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    async def _run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        runner = self._ensure_runner()
        if asyncio.get_running_loop() is runner.loop:
            return await coro
        return await asyncio.wrap_future(runner.submit(coro))

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def _headers(self) -> dict[str, str]:
        headers = dict(self.options.headers)
        env = self.options.api_key_env
        key = os.environ.get(env) if env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _ensure_client(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        if self._client is None or self._semaphore is None:
            n = self.options.max_concurrency
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.options.timeout_s),
                limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
                headers=self._headers(),
            )
            self._semaphore = asyncio.Semaphore(n)
        return self._client, self._semaphore

    async def _many(
        self, batch: list[ChatRequest], return_exceptions: bool
    ) -> list[ChatResponse | LLMCallFailed]:
        results = await asyncio.gather(*(self._achat(r) for r in batch), return_exceptions=True)
        out: list[ChatResponse | LLMCallFailed] = []
        for result in results:
            if isinstance(result, LLMCallFailed):
                if not return_exceptions:
                    raise result
                out.append(result)
            elif isinstance(result, BaseException):  # a bug or a configuration error: stop
                raise result
            else:
                out.append(result)
        return out

    # -- one request ---------------------------------------------------------------------------

    async def _achat(self, request: ChatRequest) -> ChatResponse:
        sampling = effective_sampling(self.options.sampling, request.sampling)
        if sampling.get("n", 1) != 1:
            raise ValueError("n > 1 is not supported; ask again with seed=i for more samples")
        self._count("requests")
        if self.cache is None:
            return await self._call(request, sampling)
        body = cache_request(self.options.model, request.messages, request.tools, sampling)
        key = request_key(body)
        if self.options.cache_mode != "refresh":
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        if self.options.cache_mode == "replay":
            raise LLMCacheMiss(
                f"cache_mode is 'replay' and {self.cache.path(key)} does not exist "
                f"(model {self.options.model!r}, {len(request.messages)} messages)",
                backend=NAME,
                key=key,
            )
        pending = self._pending.get(key)
        if pending is not None:  # the same request is already on the wire: share its answer
            self._count("shared")
            return copy.deepcopy(await asyncio.shield(pending))  # callers may edit their copy
        future: asyncio.Future[ChatResponse] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            response = await self._call(request, sampling, key=key)
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, self.cache.put, key, body, response
                )
            except OSError as exc:  # a full disk must not cost an answer already paid for
                log.warning("could not store an LLM answer in %s: %s", self.cache.directory, exc)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody shared it
            raise
        else:
            future.set_result(response)
            return response
        finally:
            self._pending.pop(key, None)

    def _wire(self, request: ChatRequest) -> tuple[list[JSONDict], list[JSONDict] | None]:
        if self.options.tool_call_mode == "native":
            tools = [dict(t) for t in request.tools] if request.tools else None
            return [dict(m) for m in request.messages], tools
        fmt = self._parser.format if self._parser is not None else format_hermes
        messages = messages_with_text_tools(
            request.messages,
            request.tools,
            format_calls=fmt,
            tools_prompt=self.options.tools_prompt,
        )
        return messages, None

    def _read(self, response: httpx.Response) -> ChatResponse:
        try:
            body = response.json()
        except ValueError as exc:
            raise ValueError(f"the answer is not JSON: {response.text[:200]!r}") from exc
        parsed = response_from_completion(body)
        if self.options.tool_call_mode == "parsed" and "tool_calls" not in parsed.message:
            parse = self._parser.parse if self._parser is not None else parse_hermes
            parsed = response_from_text(
                parsed.message["content"],
                finish_reason=parsed.finish_reason,
                usage=parsed.usage,
                parse=parse,
            )
        return parsed

    async def _call(
        self, request: ChatRequest, sampling: Mapping[str, Any], key: str | None = None
    ) -> ChatResponse:
        client, semaphore = self._ensure_client()
        messages, tools = self._wire(request)
        payload: JSONDict = {"model": self.options.model, "messages": messages, **sampling}
        if tools:
            payload["tools"] = tools
        payload["stream"] = False
        timeout = self.options.timeout_s
        attempts = 0
        while True:
            attempts += 1
            wait: float | None = None
            try:
                async with semaphore:
                    self._count("http_calls")
                    response = await _within(timeout, client.post(self.endpoint, json=payload))
            except (asyncio.TimeoutError, httpx.TimeoutException):
                problem = f"no answer within timeout_s={timeout:g}"
            except httpx.TransportError as exc:
                problem = f"connection error ({type(exc).__name__}: {exc or 'connection closed'})"
            else:
                status = response.status_code
                if status == 200:
                    try:
                        return self._read(response)
                    except ValueError as exc:
                        problem = f"malformed answer: {exc}"
                else:
                    message = server_message(response)
                    if status in ENDPOINT_STATUSES:
                        self._count("failures")
                        raise LLMEndpointError(
                            f"{self.endpoint} answered {status}: {message}{self._hint(status)}",
                            backend=NAME,
                            status=status,
                        )
                    if not is_retryable(status):
                        self._count("failures")
                        raise LLMRequestRejected(
                            f"{self.endpoint} rejected the request with HTTP {status}: {message}",
                            backend=NAME,
                            attempts=attempts,
                            status=status,
                            key=key,
                        )
                    problem = f"HTTP {status}: {message}"
                    wait = retry_after_s(response.headers)
            if attempts > self.options.max_retries:
                self._count("failures")
                raise LLMRetriesExhausted(
                    f"gave up after {attempts} attempts at {self.endpoint} "
                    f"(max_retries={self.options.max_retries}); last error: {problem}",
                    backend=NAME,
                    attempts=attempts,
                    key=key,
                )
            delay = min(
                self.options.max_wait_s,
                wait if wait is not None else self._backoff.delay(attempts),
            )
            self._count("retries")
            log.warning(
                "%s: attempt %d/%d failed (%s); retrying in %.2f s",
                self.endpoint,
                attempts,
                self.options.max_retries + 1,
                problem,
                delay,
            )
            await asyncio.sleep(delay)

    def _hint(self, status: int) -> str:
        env = self.options.api_key_env
        if status == 401 and not (env and os.environ.get(env)):
            where = env or "named by api_key_env"
            return f" (no API key was sent: set the environment variable {where})"
        if status == 404:
            return f" (check base_url {self.options.base_url!r} and model {self.options.model!r})"
        return ""
