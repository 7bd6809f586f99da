"""An asyncio event loop in a background thread, so synchronous callers can use the async mcp SDK.

Coroutines are submitted from any thread and their results awaited with a limit. Resources
registered with ``track`` (live MCP sessions) are closed on the loop when the process exits,
before the loop stops, so no server process outlives ASTRA.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
log = logging.getLogger("astra.mcp")

# how long closing every tracked resource may take at exit
SHUTDOWN_TIMEOUT_S = 15.0


class AsyncClosable(Protocol):
    async def aclose(self) -> None: ...


class BackgroundLoop:
    """A daemon thread running one event loop; started on first use."""

    def __init__(self, name: str = "astra-mcp-loop") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._resources: weakref.WeakSet[Any] = weakref.WeakSet()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or not self.running:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=serve, name=self.name, daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def in_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop())

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for it; ``TimeoutError`` past ``timeout`` (the
        coroutine is cancelled then)."""
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError("BackgroundLoop.run called from the loop's own thread")
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no result within {timeout} s") from None

    def track(self, resource: AsyncClosable) -> None:
        """Close ``resource`` (``await resource.aclose()``) when the loop shuts down."""
        self._resources.add(resource)

    def untrack(self, resource: AsyncClosable) -> None:
        self._resources.discard(resource)

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT_S) -> None:
        """Close every tracked resource, then stop the loop and its thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None or not thread.is_alive():
            return
        resources = list(self._resources)
        self._resources = weakref.WeakSet()
        if resources:

            async def close_all() -> None:
                await asyncio.gather(*(r.aclose() for r in resources), return_exceptions=True)

            future = asyncio.run_coroutine_threadsafe(close_all(), loop)
            try:
                future.result(timeout)
            except Exception as exc:  # a server that will not stop must not block exit
                log.warning("closing %d MCP session(s) at exit failed: %s", len(resources), exc)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()


_shared: BackgroundLoop | None = None
_shared_lock = threading.Lock()


def shared_loop() -> BackgroundLoop:
    """The process-wide loop of the MCP components (one thread however many servers)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = BackgroundLoop()
        return _shared


@atexit.register
def _shutdown_shared_loop() -> None:
    if _shared is not None:
        _shared.shutdown()
