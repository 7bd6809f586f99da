"""The ``mcp`` tool executor: calls a tool on a live MCP server, for real.

Servers are reached over stdio (``mcp-stdio`` endpoints) or HTTP (``mcp-http`` endpoints, with
streamable HTTP or SSE, and the authors' ``smithery`` rows). One live session per server (keyed
by the endpoint's command, environment and folder, or URL, transport and header templates),
started lazily on the first call and reused by every later call, from any thread. The async SDK
runs on a background event loop; ``call`` blocks until the result, the per-call timeout, or an
error. Nothing raises out of ``call``: a tool error (``isError``), a timeout, a server that will
not start or cannot be reached, or whose connection broke, all become
``ToolCallResult(error=True, output=message)``.

A stdio server whose connection broke is started again on the next call, at most ``max_starts``
times in all. A URL server is connected again whenever a call needs a session, with up to
``connect_attempts`` tries and doubling waits; a call whose request never reached the server (a
refused connection, a session the server forgot) is sent once more on the new connection, and
any other call on a broken connection fails (it may have run: sending it again could repeat a
write). ``close()`` stops every session this executor opened (they are also closed when the
process exits).

MCP servers keep their state outside ASTRA (a repository, a database), so there is no
per-trajectory copy of it: this executor has no ``open_session``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from astra_core.records import ToolCall, ToolCallResult, ToolServer
from astra_mcp.endpoint import EndpointError, HttpLaunch, Launch, launch_of
from astra_mcp.event_loop import shared_loop
from astra_mcp.live_server import (
    CALL_OVERHEAD_S,
    LiveServer,
    ServerGone,
    ServerStartError,
    connect,
    describe_exception,
    retry_limit,
)
from astra_mcp.options import McpExecutorOptions
from astra_mcp.tool_schemas import result_text

if TYPE_CHECKING:
    from astra_core.registry import ComponentBuilder

log = logging.getLogger("astra.mcp")


class McpToolExecutor:
    def __init__(
        self, options: McpExecutorOptions, builder: ComponentBuilder | None = None
    ) -> None:
        self.options = options
        self.loop = shared_loop()
        self._lock = threading.Lock()
        self._servers: dict[str, LiveServer] = {}
        self._server_locks: dict[str, threading.Lock] = {}
        self._starts: dict[str, int] = {}
        self._last_failure: dict[str, str] = {}

    # -- sessions ----------------------------------------------------------------------------

    @property
    def starts(self) -> dict[str, int]:
        """How many times each server (by launch key) was started, or a connection to it tried."""
        return dict(self._starts)

    def live_servers(self) -> list[LiveServer]:
        with self._lock:
            return [s for s in self._servers.values() if s.alive]

    def session(self, server: ToolServer) -> LiveServer:
        """The live session of ``server``, started if it has none (``ServerStartError``)."""
        launch = launch_of(server)
        key = launch.key
        with self._lock:
            server_lock = self._server_locks.setdefault(key, threading.Lock())
        # one start per server even when many threads call at once
        with server_lock:
            live = self._servers.get(key)
            if live is not None and live.alive:
                return live
            if live is not None:
                self._last_failure[key] = live.failure or "the session ended"
                live.close()
            return self._start(server, launch)

    def _start(self, server: ToolServer, launch: Launch) -> LiveServer:
        key = launch.key
        timeout = self.options.start_timeout_s
        if isinstance(launch, HttpLaunch):
            # a remote server may come back: every session needed gets its bounded retries

            def counted() -> None:
                self._starts[key] = self._starts.get(key, 0) + 1

            attempts = self.options.connect_attempts
            backoff = self.options.retry_backoff_s
            try:
                live = self.loop.run(
                    connect(
                        launch,
                        self.loop,
                        name=server.title,
                        timeout=timeout,
                        attempts=attempts,
                        backoff_s=backoff,
                        on_attempt=counted,
                    ),
                    retry_limit(timeout, attempts, backoff),
                )
            except TimeoutError:  # connect bounds itself; this only guards against a stuck loop
                raise ServerStartError(
                    f"MCP server {server.title!r} ({launch.where}) could not be reached: no "
                    "answer in time"
                ) from None
        else:
            starts = self._starts.get(key, 0)
            if starts >= self.options.max_starts:
                raise ServerStartError(
                    f"MCP server {server.title!r} ({launch.where}) was started {starts} "
                    f"time(s) and its connection broke each time; not starting it again "
                    f"(last: {self._last_failure.get(key, '?')})"
                )
            self._starts[key] = starts + 1
            live = LiveServer(launch, self.loop, name=server.title).start(timeout)
        with self._lock:
            self._servers[key] = live
        return live

    def close_server(self, server: ToolServer) -> None:
        """Stop ``server``'s session (a later call starts it again)."""
        try:
            key = launch_of(server).key
        except EndpointError:
            return
        with self._lock:
            live = self._servers.pop(key, None)
        if live is not None:
            live.close()

    def close(self) -> None:
        """Stop every server this executor started."""
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
        for live in servers:
            live.close()

    # -- calls -------------------------------------------------------------------------------

    def call(self, server: ToolServer, call: ToolCall) -> ToolCallResult:
        def error(message: str) -> ToolCallResult:
            return ToolCallResult(call.name, dict(call.arguments), message, error=True)

        if call.name not in server.tool_names:
            return error(
                f"Error: {server.title!r} has no tool {call.name!r}; its tools are: "
                f"{', '.join(server.tool_names)}"
            )
        if not isinstance(call.arguments, Mapping):
            return error(f"Error: the arguments of {call.name} must be a JSON object")
        timeout = self.options.call_timeout_s
        try:
            try:
                result = self._call_once(server, call, timeout)
            except ServerGone as exc:
                if not exc.undelivered:
                    raise
                # the request never reached the server: a new connection may deliver it
                log.warning("%s; connecting again to send %s once more", exc, call.name)
                result = self._call_once(server, call, timeout)
        except (ServerStartError, EndpointError, ServerGone) as exc:
            return error(f"Error: {exc}")
        except (asyncio.TimeoutError, TimeoutError):
            return error(
                f"Error: {call.name} (MCP server {server.title!r}) did not answer within "
                f"{timeout:g} s"
            )
        except Exception as exc:  # a protocol error (unknown tool, bad params) is an observation
            return error(f"Error: {call.name} failed: {describe_exception(exc)}")
        text = result_text(result, max_chars=self.options.max_output_chars)
        return ToolCallResult(
            call.name,
            dict(call.arguments),
            text,
            error=bool(result.get("isError")),
        )

    def _call_once(self, server: ToolServer, call: ToolCall, timeout: float) -> dict[str, Any]:
        live = self.session(server)
        return self.loop.run(
            live.call_tool(call.name, dict(call.arguments), timeout), timeout + CALL_OVERHEAD_S
        )

    def __enter__(self) -> McpToolExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
