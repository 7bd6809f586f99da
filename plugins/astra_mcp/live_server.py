"""One live MCP server: its connection (a process over stdio, or HTTP) and initialised
``ClientSession``.

The mcp SDK's transports are async context managers that must be entered and left by the same
task, so each server lives in one task on the background loop: the task opens the transport
(starts the process, or opens the HTTP client), initialises the session, signals it is ready,
then waits until it is told to stop and leaves the contexts (over stdio the SDK closes stdin,
then terminates the process; over streamable HTTP it ends the session with a DELETE). Requests
are sent from other tasks on the same loop; the session multiplexes them. Works with mcp 1.x
and 2.x: only ``stdio_client``, ``StdioServerParameters``, ``streamable_http_client`` (whose
tuple has a third item on 1.x only), ``sse_client``,
``ClientSession.initialize/list_tools/call_tool`` and pydantic's ``model_dump(by_alias=True)``
(camelCase wire names) are used. ``connect`` retries a server that cannot be reached, with
backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from astra_core.records import JSONDict
from astra_mcp.endpoint import EndpointError, HttpConnection, HttpLaunch, Launch
from astra_mcp.event_loop import BackgroundLoop

T = TypeVar("T")
log = logging.getLogger("astra.mcp")

# extra seconds the synchronous side waits beyond a coroutine's own limit
GRACE_S = 5.0
# the SDK closes stdin, waits 2 s, sends SIGTERM, waits 2 s more, then kills
STOP_TIMEOUT_S = 10.0
STDERR_TAIL_CHARS = 600


# a failure with one of these (httpx/httpcore names) may pass: worth connecting again
TRANSIENT_ERRORS = {
    "ConnectError",
    "ConnectTimeout",
    "ReadError",
    "ReadTimeout",
    "WriteError",
    "WriteTimeout",
    "PoolTimeout",
    "RemoteProtocolError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "TimeoutError",
}
# a request that failed with one of these never reached the server: sending it again is safe
UNDELIVERED_ERRORS = {"ConnectError", "ConnectTimeout", "ConnectionRefusedError"}
# the SDK's answer to a request whose HTTP session the server no longer knows (it answered
# 404): mcp 1.x says the first, 2.x passes on the server's own words (the SDK server's here)
SESSION_LOST = ("session terminated", "session not found")
# mcp 2.x's answer to a request whose response stream the server cut (1.x leaves it unanswered)
CUT_OFF = "stream ended without a response"
# how long a broken call waits for its connection's task to say why it broke
FAILURE_WAIT_S = 2.0
# limit on the ping that tells a slow HTTP server from a gone one, after a call timed out
PING_TIMEOUT_S = 3.0
# what a call may take beyond its own limit (the ping, the wait for the cause, a margin)
CALL_OVERHEAD_S = PING_TIMEOUT_S + FAILURE_WAIT_S + GRACE_S


class ServerStartError(Exception):
    """A server that could not be started, reached, initialised or listed; the message says
    why. ``transient``: connecting again may work (a refused connection, a 5xx answer)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class _ConnectionEnded(Exception):
    """The connection's task ended while a request waited for its answer."""


class ServerGone(Exception):
    """The connection to a running server broke (the process exited, a pipe closed, the HTTP
    server went away). ``undelivered``: the request never reached the server, so sending it
    again on a new connection cannot repeat its effects."""

    def __init__(self, message: str, *, undelivered: bool = False) -> None:
        super().__init__(message)
        self.undelivered = undelivered


def describe_exception(exc: BaseException) -> str:
    """A one-line account of an exception, looking inside exception groups (anyio task groups
    wrap what went wrong)."""
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        inner = getattr(e, "exceptions", None)
        if isinstance(inner, (list, tuple)) and inner:
            for sub in inner:
                walk(sub)
        else:
            leaves.append(e)

    walk(exc)
    parts = []
    for leaf in leaves[:3]:
        text = str(leaf).strip()
        parts.append(f"{type(leaf).__name__}: {text}" if text else type(leaf).__name__)
    return "; ".join(parts)


def _dump(model: Any) -> JSONDict:
    """A pydantic model of the SDK as JSON with the protocol's camelCase names."""
    return dict(model.model_dump(by_alias=True, exclude_none=True, mode="json"))


def _is_broken_connection(exc: BaseException) -> bool:
    names = {type(e).__name__ for e in _leaves(exc)}
    text = describe_exception(exc).lower()
    return (
        bool(
            names & {"ClosedResourceError", "BrokenResourceError", "EndOfStream", "BrokenPipeError"}
        )
        or "connection closed" in text
        or _session_lost(text)
        or CUT_OFF in text
    )


def _session_lost(text: str) -> bool:
    """Whether an error says the server no longer knows the HTTP session (it answered 404)."""
    return any(marker in text.lower() for marker in SESSION_LOST)


def is_transient(exc: BaseException) -> bool:
    """Whether connecting again may get past ``exc``: a network failure, a timeout, an HTTP
    answer 408, 429 or 5xx (not a 401, a bad URL or a missing variable)."""
    for leaf in _leaves(exc):
        if type(leaf).__name__ in TRANSIENT_ERRORS or isinstance(leaf, asyncio.TimeoutError):
            return True
        status = getattr(getattr(leaf, "response", None), "status_code", None)
        if isinstance(status, int) and (status >= 500 or status in (408, 429)):
            return True
    return False


def _leaves(exc: BaseException) -> list[BaseException]:
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, (list, tuple)) and inner:
        return [leaf for sub in inner for leaf in _leaves(sub)]
    return [exc]


class LiveServer:
    """A started MCP server. ``start`` and ``close`` are synchronous; ``list_tools`` and
    ``call_tool`` are coroutines run on ``loop`` (use ``loop.run(...)`` from other threads)."""

    def __init__(self, launch: Launch, loop: BackgroundLoop, *, name: str = "") -> None:
        self.launch = launch
        self.loop = loop
        self.name = name or launch.display
        self.initialize_result: JSONDict = {}
        self.failure: str | None = None
        self._failure_exc: BaseException | None = None
        self._connection: HttpConnection | None = None
        self._session: Any = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0
        self.http_status: int | None = None  # the last HTTP error status the server answered
        # a stdio server's stderr, read back to explain a failed start
        self._errlog = tempfile.TemporaryFile(  # noqa: SIM115 (closed in close())
            mode="w+", encoding="utf-8", errors="replace"
        )

    # -- life cycle --------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._session is not None and self.failure is None

    def start(self, timeout: float) -> LiveServer:
        """Start the server and initialise the session; ``ServerStartError`` saying why not."""
        try:
            self.loop.run(self.astart(timeout), timeout + STOP_TIMEOUT_S + GRACE_S)
        except TimeoutError:  # astart bounds itself; this only guards against a stuck loop
            raise ServerStartError(self._explain(f"no answer within {timeout:g} s")) from None
        return self

    async def astart(self, timeout: float) -> LiveServer:
        """``start`` as a coroutine on the loop (to start many servers at once)."""
        try:
            await self._start(timeout)
        except BaseException:
            self._errlog.close()
            raise
        self.loop.track(self)
        return self

    async def _start(self, timeout: float) -> None:
        try:
            streams = self._streams(timeout)
        except EndpointError as exc:
            raise ServerStartError(self._explain(str(exc))) from None
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.ensure_future(self._serve(streams, ready))
        try:
            await asyncio.wait_for(asyncio.shield(ready), timeout)
        except asyncio.TimeoutError:
            message = self._explain(f"it did not answer MCP initialize within {timeout:g} s")
            await self.aclose()
            raise ServerStartError(message, transient=True) from None
        except Exception as exc:
            status = self.http_status
            what = describe_exception(exc)
            if status is not None and str(status) not in what:
                what += f" (HTTP {status})"
            transient = is_transient(exc) or (
                status is not None and (status >= 500 or status in (408, 429))
            )
            message = self._explain(what)
            await self.aclose()
            raise ServerStartError(message, transient=transient) from None

    def _streams(self, timeout: float) -> contextlib.AbstractAsyncContextManager[Any]:
        """The transport to open: it yields the read and write streams of the session."""
        if isinstance(self.launch, HttpLaunch):
            self._connection = self.launch.connection()
            return _http_streams(
                self._connection, self.launch.transport, timeout, self._heard_status
            )
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client

        env = self.launch.expanded_env()
        params = StdioServerParameters(
            command=self.launch.program(),
            args=list(self.launch.command[1:]),
            env=env or None,
            cwd=self.launch.cwd,
        )
        return stdio_client(params, errlog=self._errlog)

    async def _serve(
        self, streams: contextlib.AbstractAsyncContextManager[Any], ready: asyncio.Future[None]
    ) -> None:
        from mcp import ClientSession

        assert self._stop is not None
        try:
            async with streams as (read, write), ClientSession(read, write) as session:
                result = await session.initialize()
                self.initialize_result = _dump(result)
                self._session = session
                if not ready.done():
                    ready.set_result(None)
                await self._stop.wait()
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
            raise
        except BaseException as exc:  # anyio groups may hold a cancellation beside the cause
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            self.failure = self._redact(describe_exception(exc))
            self._failure_exc = exc
            if not ready.done():
                ready.set_exception(exc)
        finally:
            self._session = None

    async def aclose(self) -> None:
        """Stop the server: over stdio the SDK closes its stdin, then terminates it if it
        lingers; over HTTP it ends the session. A server still starting is cancelled."""
        self.loop.untrack(self)
        task = self._task
        if task is not None and not task.done():
            if self._session is None:
                task.cancel()
            elif self._stop is not None:
                self._stop.set()
            try:
                await asyncio.wait_for(task, STOP_TIMEOUT_S)
            except (asyncio.TimeoutError, asyncio.CancelledError, Exception):
                task.cancel()
        self._session = None
        self._errlog.close()

    def close(self) -> None:
        if self._task is None or not self.loop.running:
            return
        try:
            self.loop.run(self.aclose(), STOP_TIMEOUT_S + GRACE_S)
        except (TimeoutError, RuntimeError):
            self._errlog.close()

    def _heard_status(self, status: int) -> None:
        self.http_status = status

    # -- requests ----------------------------------------------------------------------------

    def _require_session(self) -> Any:
        if self._session is None:
            raise ServerGone(
                f"MCP server {self.name!r} is not running"
                + (f" ({self.failure})" if self.failure else "")
            )
        return self._session

    async def list_tools(self, timeout: float) -> list[JSONDict]:
        """Every tool the server lists (following pagination), as protocol JSON."""
        session = self._require_session()
        tools: list[JSONDict] = []
        cursor: str | None = None
        for _ in range(1000):  # a server whose cursor never ends must not loop forever
            if cursor is None:
                result = await asyncio.wait_for(session.list_tools(), timeout)
            else:
                result = await asyncio.wait_for(_list_page(session, cursor), timeout)
            page = _dump(result)
            tools.extend(page.get("tools") or [])
            cursor = page.get("nextCursor")
            if not cursor:
                break
        return tools

    async def call_tool(self, name: str, arguments: JSONDict, timeout: float) -> JSONDict:
        """The ``CallToolResult`` as protocol JSON (``content``, ``isError``,
        ``structuredContent``). ``asyncio.TimeoutError`` past ``timeout``; ``ServerGone`` when
        the connection broke."""
        session = self._require_session()
        sole = self._in_flight == 0
        self._in_flight += 1
        try:
            result = await self._race(session.call_tool(name, arguments), timeout)
        except _ConnectionEnded:
            raise await self._broke(
                ConnectionError("the connection closed during the call"), sole=sole
            ) from None
        except asyncio.TimeoutError:
            # over HTTP a response stream cut by the server can leave the request unanswered
            # (the SDK drops the error): a server that no longer answers pings is gone
            if isinstance(self.launch, HttpLaunch) and not await self._answers_ping(session):
                raise await self._broke(
                    ConnectionError(
                        f"no answer within {timeout:g} s, and the server no longer answers pings"
                    ),
                    sole=False,  # the call may have run
                    wait=False,  # the transport itself did not fail: no cause to wait for
                ) from None
            raise
        except Exception as exc:
            if _is_broken_connection(exc):
                raise await self._broke(exc, sole=sole) from exc
            raise
        finally:
            self._in_flight -= 1
        return _dump(result)

    async def _race(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """``await coro`` with a limit; ``_ConnectionEnded`` when the connection's task ends
        first (the SDK's notice to pending requests can be lost when the transport's task
        group is cancelled, so the request alone might wait for ever)."""
        request = asyncio.ensure_future(coro)
        watched: set[asyncio.Future[Any]] = {request}
        if self._task is not None:
            watched.add(self._task)
        done, _ = await asyncio.wait(watched, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if request in done:
            return request.result()
        request.cancel()
        with contextlib.suppress(BaseException):
            await request
        if not done:
            raise asyncio.TimeoutError
        raise _ConnectionEnded

    async def _answers_ping(self, session: Any) -> bool:
        try:
            await self._race(session.send_ping(), PING_TIMEOUT_S)
        except (Exception, _ConnectionEnded):
            return False
        return True

    async def _broke(self, exc: BaseException, *, sole: bool, wait: bool = True) -> ServerGone:
        """Mark the connection broken and say why, with the cause its own task saw (the call
        itself only sees "Connection closed"). ``sole``: the call was the only request in
        flight, so a failure to connect was its own."""
        terminated = _session_lost(describe_exception(exc))
        task = self._task
        # over HTTP the transport's task group ends with the cause; a stdio session lingers
        if isinstance(self.launch, HttpLaunch) and task is not None and wait and not terminated:
            await asyncio.wait({task}, timeout=FAILURE_WAIT_S)
        cause = self._failure_exc
        self.failure = self.failure or self._redact(describe_exception(exc))
        names = {type(e).__name__ for e in _leaves(cause)} if cause is not None else set()
        # a 404 answers this very request; a refused connection only if no other was in flight
        undelivered = terminated or (sole and bool(names & UNDELIVERED_ERRORS))
        # the operator gets the server's stderr; the agent a short observation
        log.warning(
            "MCP server %r (%s) broke: %s%s",
            self.name,
            self.launch.where,
            self.failure,
            f"; its stderr ends with: {self.stderr_tail() or '(nothing)'}"
            if not isinstance(self.launch, HttpLaunch)
            else "",
        )
        return ServerGone(
            f"the connection to MCP server {self.name!r} ({self.launch.where}) broke: "
            f"{self.failure}",
            undelivered=undelivered,
        )

    # -- diagnostics -------------------------------------------------------------------------

    def stderr_tail(self) -> str:
        try:
            self._errlog.flush()
            self._errlog.seek(0)
            text = self._errlog.read()
        except (OSError, ValueError):
            return ""
        text = text.strip()
        return text[-STDERR_TAIL_CHARS:] if text else ""

    def _redact(self, text: str) -> str:
        """``text`` without the secrets filled into the URL and headers (an HTTP error may
        quote the URL, with an API key in its query)."""
        return self._connection.redact(text) if self._connection is not None else text

    def _explain(self, what: str) -> str:
        tail = self.stderr_tail()
        verb = "could not be reached" if isinstance(self.launch, HttpLaunch) else "failed to start"
        message = f"MCP server {self.name!r} ({self.launch.where}) {verb}: {self._redact(what)}"
        return message + (f"; its stderr ends with: {tail}" if tail else "")


async def connect(
    launch: Launch,
    loop: BackgroundLoop,
    *,
    name: str,
    timeout: float,
    attempts: int = 1,
    backoff_s: float = 0.5,
    on_attempt: Callable[[], None] | None = None,
) -> LiveServer:
    """A started ``LiveServer``. A failure that may pass (``ServerStartError.transient``) is
    tried again, up to ``attempts`` tries in all, waiting ``backoff_s``, then twice as long
    each time; the last error says how many tries were made."""
    for attempt in range(1, attempts + 1):
        if on_attempt is not None:
            on_attempt()
        try:
            return await LiveServer(launch, loop, name=name).astart(timeout)
        except ServerStartError as exc:
            if not exc.transient or attempt == attempts:
                if attempt > 1:
                    raise ServerStartError(
                        f"{exc} (after {attempt} attempts)", transient=exc.transient
                    ) from None
                raise
            delay = backoff_s * 2 ** (attempt - 1)
            log.warning("%s; trying again in %.1f s (attempt %d/%d)", exc, delay, attempt, attempts)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable: attempts >= 1")


def retry_limit(timeout: float, attempts: int, backoff_s: float) -> float:
    """The longest ``connect`` can take, with margin: the limit for a caller that waits."""
    waits = sum(backoff_s * 2**i for i in range(max(attempts - 1, 0)))
    return attempts * (timeout + STOP_TIMEOUT_S) + waits + GRACE_S


@contextlib.asynccontextmanager
async def _http_streams(
    connection: HttpConnection,
    transport: str,
    timeout: float,
    on_status: Callable[[int], None],
) -> AsyncIterator[tuple[Any, Any]]:
    """The read and write streams of an HTTP transport of the installed SDK. ``on_status`` hears
    every HTTP error status (mcp 2.x turns them into a JSON-RPC error without the number)."""
    headers = connection.headers or None

    def client_factory(**kwargs: Any) -> Any:
        return _watched(_http_client(**kwargs), on_status)

    if transport == "sse":
        try:
            from mcp.client.sse import sse_client
        except ImportError:
            raise EndpointError(
                "the installed mcp SDK has no SSE client; use transport streamable-http"
            ) from None
        async with sse_client(
            connection.url, headers=headers, timeout=timeout, httpx_client_factory=client_factory
        ) as streams:
            yield streams[0], streams[1]
        return
    from mcp.client.streamable_http import streamable_http_client

    async with (
        client_factory(headers=headers) as client,
        streamable_http_client(connection.url, http_client=client) as streams,
    ):
        # mcp 1.x yields a third item (a session id getter), 2.x two
        yield streams[0], streams[1]


def _http_client(headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """An HTTP client of the library the SDK itself uses (httpx on 1.x, a fork on later 2.x),
    with the SDK's timeouts (or those given) and our headers."""
    try:
        from mcp.shared._httpx_utils import create_mcp_http_client
    except ImportError:  # a layout we do not know: plain httpx with the SDK's usual limits
        import httpx

        kwargs.setdefault("timeout", httpx.Timeout(30.0, read=300.0))
        return httpx.AsyncClient(headers=headers, **kwargs)
    return create_mcp_http_client(headers=headers, **kwargs)


def _watched(client: Any, on_status: Callable[[int], None]) -> Any:
    """``client`` reporting each HTTP error status it receives to ``on_status``."""

    async def hear(response: Any) -> None:
        if response.status_code >= 400:
            on_status(int(response.status_code))

    with contextlib.suppress(AttributeError, TypeError):  # a client without event hooks
        hooks = dict(client.event_hooks)
        hooks["response"] = [*hooks.get("response", []), hear]
        client.event_hooks = hooks
    return client


async def _list_page(session: Any, cursor: str) -> Any:
    import mcp.types

    try:
        return await session.list_tools(params=mcp.types.PaginatedRequestParams(cursor=cursor))
    except TypeError:  # older SDKs take the cursor alone
        return await session.list_tools(cursor)
