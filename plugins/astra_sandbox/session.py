"""A persistent sandboxed worker for one episode: load tool code once, answer many calls.

This is the extension other plugins use beyond the ``Sandbox`` protocol (the arena runtime of
RL runs many tool calls per episode)::

    with sandbox.session() as worker:          # one sandboxed Python process
        worker.load(tool_code)                 # defines functions (and module state) once
        outcome = worker.call("add", {"a": 1, "b": 2})
        outcome.output                         # what it printed, then its return value
        outcome.error                          # None, or the exception / failure, as text
        outcome.limit                          # None, or "timeout", "memory", "output", ...

``call`` never raises for anything the tool code does. If the worker dies, hangs or hits a
limit, that call returns an error outcome with ``crashed=True`` and the next call starts a new
worker with the same code loaded (module state starts over). A new session is a new process,
so one episode's state never reaches another's. Sessions are not thread-safe: one per episode.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import selectors
import shutil
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import attrs

from astra_core.errors import AstraError
from astra_sandbox.launch import site_hint
from astra_sandbox.options import SandboxOptions
from astra_sandbox.processes import SandboxProcess, classify

WORKER = Path(__file__).with_name("worker_main.py")


@attrs.frozen
class CallOutcome:
    """What one call returned: its printed output and return value, or an error message.

    ``limit`` names the sandbox limit behind a failure ("timeout", "memory", "cpu",
    "processes", "output", "protocol", ...) or output that was cut ("output" with no error);
    ``crashed`` says the worker was stopped, so whatever state it held is gone."""

    output: str
    error: str | None = None
    limit: str | None = None
    crashed: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def _cleanup(state: dict[str, Any]) -> None:
    process, state["process"] = state["process"], None
    if process is not None:
        process.close()
    shutil.rmtree(state["dir"], ignore_errors=True)


class SandboxSession:
    """One worker process at a time for one episode (see the module docstring)."""

    def __init__(
        self, launcher: Any, options: SandboxOptions, *, timeout_s: float | None = None
    ) -> None:
        self.launcher = launcher
        self.options = options
        self.timeout_s = timeout_s or options.timeout_s
        directory = Path(tempfile.mkdtemp(prefix="astra-session-"))
        shutil.copy(WORKER, directory / "worker.py")
        self._state: dict[str, Any] = {"dir": directory, "process": None}
        self._finalizer = weakref.finalize(self, _cleanup, self._state)
        self._loaded: list[str] = []
        self._lock = threading.Lock()
        self._closed = False
        self.calls = 0
        self.restarts = 0

    @property
    def alive(self) -> bool:
        process = self._state["process"]
        return process is not None and not process.exited()

    # -- the worker process --------------------------------------------------------------------

    def _ensure(self) -> SandboxProcess | CallOutcome:
        """The running worker, started (with the code loaded so far) if there is none."""
        if self._closed:
            raise AstraError("this sandbox session is closed; open a new one")
        process = self._state["process"]
        if process is not None:
            return process
        directory = self._state["dir"]
        try:
            process = SandboxProcess(
                self.launcher.argv(directory, "worker.py"),
                self.launcher.cwd(directory),
                self.options,
                keep_stdin=True,
            )
        except AstraError as exc:
            return CallOutcome("", f"the sandbox worker could not start: {exc}", None, True)
        self._state["process"] = process
        for code in self._loaded:
            outcome = self._request(process, {"op": "load", "code": code})
            if outcome.crashed:
                return attrs.evolve(
                    outcome,
                    error=f"reloading the tool code into a new worker failed: {outcome.error}",
                )
        return process

    def _stop(self, process: SandboxProcess, message: str, limit: str | None = None) -> CallOutcome:
        """Kill the worker and say why; the next call starts a new one."""
        process.kill()
        stderr = b""
        if process.proc.stderr is not None:
            with contextlib.suppress(OSError, ValueError, TypeError):
                os.set_blocking(process.proc.stderr.fileno(), False)
                stderr = process.proc.stderr.read(65536) or b""
        text = stderr.decode("utf-8", "replace").strip()
        limit = limit or classify(process, text, None)
        process.close()
        self._state["process"] = None
        self.restarts += 1
        detail = f" (limit: {limit})" if limit else ""
        if not limit and process.proc.returncode not in (None, 0, -9, 137):
            detail = f" (exit status {process.proc.returncode})"
        if text and not limit:
            detail += f"; its stderr ends: {text[-400:]}"
        return CallOutcome(
            "", f"{message}{detail}; the worker was stopped and its state lost", limit, True
        )

    # -- one request ---------------------------------------------------------------------------

    def _request(self, process: SandboxProcess, request: dict[str, Any]) -> CallOutcome:
        proc = process.proc
        assert proc.stdin is not None and proc.stdout is not None
        nonce = secrets.token_hex(16)
        try:
            line = (json.dumps({**request, "nonce": nonce}) + "\n").encode("utf-8")
        except (TypeError, ValueError) as exc:  # arguments that are not JSON never reach it
            return CallOutcome("", f"the arguments are not JSON: {exc}")
        deadline = time.monotonic() + self.timeout_s
        cap = self.options.max_output_bytes * 6 + 4096  # a character is at most 6 JSON bytes
        selector = selectors.DefaultSelector()
        try:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if selector.select(timeout=0):
                # something wrote to the channel between calls: it cannot be trusted any more
                return self._stop(
                    process, "the tool code wrote into the worker's channel", "protocol"
                )
            failure = self._send(process, line, deadline)
            if failure is not None:
                return failure
            buffer = b""
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return self._stop(
                        process, f"the call took longer than {self.timeout_s:g} s", "timeout"
                    )
                if not selector.select(timeout=min(remaining, 0.1)):
                    if process.exited():
                        return self._stop(process, "the sandbox worker died")
                    continue
                data = os.read(proc.stdout.fileno(), 65536)
                if not data:
                    return self._stop(process, "the sandbox worker died")
                buffer += data
                if len(buffer) > cap:
                    return self._stop(
                        process, "the worker sent more than the output limit", "output"
                    )
        finally:
            selector.close()
        return self._answer(process, buffer, nonce)

    def _send(self, process: SandboxProcess, line: bytes, deadline: float) -> CallOutcome | None:
        """Write the request without ever blocking past the deadline (a stopped or stuck
        worker that reads nothing must not hang the host)."""
        assert process.proc.stdin is not None
        fd = process.proc.stdin.fileno()
        os.set_blocking(fd, False)
        view = memoryview(line)
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_WRITE)
            while view:
                try:
                    view = view[os.write(fd, view) :]
                    continue
                except BlockingIOError:
                    pass
                except OSError:
                    return self._stop(process, "the sandbox worker is not running")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return self._stop(
                        process, f"the worker took no request for {self.timeout_s:g} s", "timeout"
                    )
                selector.select(timeout=min(remaining, 0.1))
        return None

    def _answer(self, process: SandboxProcess, buffer: bytes, nonce: str) -> CallOutcome:
        first, _, rest = buffer.partition(b"\n")
        try:
            answer = json.loads(first)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or answer.get("nonce") != nonce or rest.strip():
            return self._stop(
                process, "the tool code tampered with the sandbox worker's channel", "protocol"
            )
        # lone surrogates would break whoever writes the text out later
        output = str(answer.get("output", "")).encode("utf-8", "replace").decode("utf-8")
        truncated = bool(answer.get("truncated"))
        if truncated:
            output += "\n[output truncated]"
        error = answer.get("error")
        limit = answer.get("limit") or ("output" if truncated else None)
        if error is not None:
            error = site_hint(self.options, str(error))
        return CallOutcome(output, error, limit)

    # -- the API -------------------------------------------------------------------------------

    def load(self, code: str) -> CallOutcome:
        """Run ``code`` in the worker (it defines functions and state); a new worker started
        after a crash loads it again. Its output is whatever it printed."""
        with self._lock:
            process = self._ensure()
            if isinstance(process, CallOutcome):
                return process
            outcome = self._request(process, {"op": "load", "code": code})
            if outcome.error is None:
                self._loaded.append(code)
            return outcome

    def call(self, name: str, arguments: dict[str, Any]) -> CallOutcome:
        """Call the loaded function ``name`` with keyword ``arguments``; never raises for
        anything the tool does."""
        with self._lock:
            self.calls += 1
            process = self._ensure()
            if isinstance(process, CallOutcome):
                return process
            return self._request(
                process, {"op": "call", "name": name, "arguments": dict(arguments)}
            )

    def close(self) -> None:
        """Stop the worker and remove its files; the session cannot be used afterwards."""
        self._closed = True
        self._finalizer()

    def __enter__(self) -> SandboxSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
