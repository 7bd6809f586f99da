"""A small OpenAI-compatible chat-completions server on loopback, answering from a script.

A hosted LLM cannot run in tests, CI or benchmarks; this server lets the HTTP backend (and any
stage that uses it) be exercised over real HTTP/1.1 sockets: a ``handler`` decides each answer
(a recorded ``chat.completion`` body, a 429 with ``Retry-After``, a 500, a delay, a dropped
connection), and ``stop()`` kills the server mid-run, open connections included. It counts the
requests it received and the most it had in flight at once.

Run alone for benchmarks: ``python -m astra_llm.loopback_server --latency-ms 50`` prints its
base URL on the first line and answers every request after that fixed latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any, Literal

import attrs

from astra_core.records import JSONDict


@attrs.frozen
class ReceivedRequest:
    method: str
    path: str
    headers: Mapping[str, str]
    body: Any  # the decoded JSON body, or None


@attrs.frozen
class Reply:
    """One answer. ``action="drop"`` closes the connection without answering."""

    body: Any = None
    status: int = 200
    headers: Mapping[str, str] = attrs.Factory(dict)
    delay_s: float = 0.0
    action: Literal["respond", "drop"] = "respond"


Handler = Callable[[ReceivedRequest], "Reply | Awaitable[Reply]"]


def chat_completion(
    content: str = "",
    *,
    tool_calls: list[JSONDict] | None = None,
    model: str = "loopback",
    finish_reason: str | None = None,
    prompt_tokens: int = 12,
    completion_tokens: int = 5,
) -> JSONDict:
    """A ``chat.completion`` object shaped like the OpenAI API's."""
    message: JSONDict = {"role": "assistant", "content": content or None, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": None,
    }


class LoopbackServer:
    """``POST .../chat/completions`` goes to ``handler``; ``GET .../models`` lists one model."""

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.requests: list[ReceivedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def start(self) -> LoopbackServer:
        """Listen (again, on the same port after a ``stop()``)."""
        if self._loop is not None:
            raise RuntimeError("the server is already running")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="loopback-llm", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self._listen(), loop).result(timeout=10)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Die at once: stop listening and cut every open connection, in flight or idle."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection is over."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = ReceivedRequest(method, path, headers, body)
        if method == "POST" and path.rstrip("/").endswith("/chat/completions"):
            reply = await self._answer(request)
        elif method == "GET" and path.rstrip("/").endswith("/models"):
            reply = Reply({"object": "list", "data": [{"id": "loopback", "object": "model"}]})
        else:
            reply = Reply({"error": {"message": f"no route {method} {path}"}}, status=404)
        if reply.action == "drop":
            writer.transport.abort()
            return False
        data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        status = HTTPStatus(reply.status)
        out = [f"HTTP/1.1 {status.value} {status.phrase}", "Content-Type: application/json"]
        out += [f"Content-Length: {len(data)}", *(f"{k}: {v}" for k, v in reply.headers.items())]
        writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + data)
        await writer.drain()
        return headers.get("connection", "").lower() != "close"

    async def _answer(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            reply = self.handler(request)
            if inspect.isawaitable(reply):
                reply = await reply
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s)
            return reply
        finally:
            with self._lock:
                self.in_flight -= 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=50.0, help="delay of every answer")
    args = parser.parse_args(argv)
    body = chat_completion("The answer is 42.")
    server = LoopbackServer(
        lambda _: Reply(body, delay_s=args.latency_ms / 1000.0), host=args.host, port=args.port
    ).start()
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
