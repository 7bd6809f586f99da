"""One live MCP server over stdio: its process and initialised ``ClientSession``.

The mcp SDK's transports are async context managers that must be entered and left by the same
task, so each server lives in one task on the background loop: the task starts the process,
initialises the session, signals it is ready, then waits until it is told to stop and leaves
the contexts (the SDK closes stdin, then terminates the process). Requests are sent from other
tasks on the same loop; the session multiplexes them. Works with mcp 1.x and 2.x: only
``stdio_client``, ``StdioServerParameters``, ``ClientSession.initialize/list_tools/call_tool`` and
pydantic's ``model_dump(by_alias=True)`` (camelCase wire names) are used.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from typing import Any

from astra_core.records import JSONDict
from astra_mcp.endpoint import EndpointError, StdioLaunch
from astra_mcp.event_loop import BackgroundLoop

log = logging.getLogger("astra.mcp")

# extra seconds the synchronous side waits beyond a coroutine's own limit
GRACE_S = 5.0
# the SDK closes stdin, waits 2 s, sends SIGTERM, waits 2 s more, then kills
STOP_TIMEOUT_S = 10.0
STDERR_TAIL_CHARS = 600


class ServerStartError(Exception):
    """A server that could not be started, initialised or listed; the message says why."""


class ServerGone(Exception):
    """The connection to a running server broke (the process exited, a pipe closed)."""


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
    return bool(
        names & {"ClosedResourceError", "BrokenResourceError", "EndOfStream", "BrokenPipeError"}
    ) or ("connection closed" in text)


def _leaves(exc: BaseException) -> list[BaseException]:
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, (list, tuple)) and inner:
        return [leaf for sub in inner for leaf in _leaves(sub)]
    return [exc]


class LiveServer:
    """A started MCP server. ``start`` and ``close`` are synchronous; ``list_tools`` and
    ``call_tool`` are coroutines run on ``loop`` (use ``loop.run(...)`` from other threads)."""

    def __init__(self, launch: StdioLaunch, loop: BackgroundLoop, *, name: str = "") -> None:
        self.launch = launch
        self.loop = loop
        self.name = name or launch.display
        self.initialize_result: JSONDict = {}
        self.failure: str | None = None
        self._session: Any = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        # the server's stderr, read back to explain a failed start
        self._errlog = tempfile.TemporaryFile(  # noqa: SIM115 (closed in close())
            mode="w+", encoding="utf-8", errors="replace"
        )

    # -- life cycle --------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._session is not None and self.failure is None

    def start(self, timeout: float) -> LiveServer:
        """Start the process and initialise the session; ``ServerStartError`` saying why not."""
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
            program = self.launch.program()
            env = self.launch.expanded_env()
        except EndpointError as exc:
            raise ServerStartError(self._explain(str(exc))) from None
        from mcp import StdioServerParameters

        params = StdioServerParameters(
            command=program,
            args=list(self.launch.command[1:]),
            env=env or None,
            cwd=self.launch.cwd,
        )
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.ensure_future(self._serve(params, ready))
        try:
            await asyncio.wait_for(asyncio.shield(ready), timeout)
        except asyncio.TimeoutError:
            message = self._explain(f"it did not answer MCP initialize within {timeout:g} s")
            await self.aclose()
            raise ServerStartError(message) from None
        except Exception as exc:
            message = self._explain(describe_exception(exc))
            await self.aclose()
            raise ServerStartError(message) from None

    async def _serve(self, params: Any, ready: asyncio.Future[None]) -> None:
        from mcp import ClientSession
        from mcp.client.stdio import stdio_client

        assert self._stop is not None
        try:
            async with stdio_client(params, errlog=self._errlog) as streams:
                read, write = streams
                async with ClientSession(read, write) as session:
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
        except Exception as exc:
            self.failure = describe_exception(exc)
            if not ready.done():
                ready.set_exception(exc)
        finally:
            self._session = None

    async def aclose(self) -> None:
        """Stop the server: the SDK closes its stdin, then terminates it if it lingers. A
        server still starting is cancelled (the SDK's shutdown then stops the process)."""
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
        try:
            result = await asyncio.wait_for(session.call_tool(name, arguments), timeout)
        except asyncio.TimeoutError:
            raise
        except Exception as exc:
            if _is_broken_connection(exc):
                self.failure = describe_exception(exc)
                # the operator gets the server's stderr; the agent a short observation
                log.warning(
                    "MCP server %r (command: %s) broke: %s; its stderr ends with: %s",
                    self.name,
                    self.launch.display,
                    self.failure,
                    self.stderr_tail() or "(nothing)",
                )
                raise ServerGone(
                    f"the connection to MCP server {self.name!r} broke: {self.failure}"
                ) from exc
            raise
        return _dump(result)

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

    def _explain(self, what: str) -> str:
        tail = self.stderr_tail()
        message = (
            f"MCP server {self.name!r} (command: {self.launch.display}) failed to start: {what}"
        )
        return message + (f"; its stderr ends with: {tail}" if tail else "")


async def _list_page(session: Any, cursor: str) -> Any:
    import mcp.types

    try:
        return await session.list_tools(params=mcp.types.PaginatedRequestParams(cursor=cursor))
    except TypeError:  # older SDKs take the cursor alone
        return await session.list_tools(cursor)
