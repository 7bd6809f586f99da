"""A persistent sandboxed worker for one episode: load tool code once, answer many calls."""

from __future__ import annotations

import json
import os
import secrets
import selectors
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

from astra_sandbox.options import SandboxOptions
from astra_sandbox.processes import SandboxProcess, classify

WORKER = Path(__file__).with_name("worker_main.py")


@attrs.frozen
class CallOutcome:
    """What one call returned: its printed output and return value, or an error message.
    ``limit`` names a sandbox limit that ended the worker ("timeout", "memory", ...)."""

    output: str
    error: str | None = None
    limit: str | None = None


class SandboxSession:
    """One worker process. State (module globals the tool code keeps) lives as long as the
    session; a new session is a new process, so episodes never share state. If the worker dies,
    hits a limit or breaks the protocol, the call returns an error outcome and the next call
    starts a fresh worker with the same code loaded."""

    def __init__(self, launcher: Any, options: SandboxOptions) -> None:
        self.launcher = launcher
        self.options = options
        self._dir = Path(tempfile.mkdtemp(prefix="astra-session-"))
        shutil.copy(WORKER, self._dir / "worker.py")
        self._loaded: list[str] = []
        self._process: SandboxProcess | None = None
        self.restarts = 0

    def _start(self) -> SandboxProcess:
        import subprocess

        process = SandboxProcess(
            self.launcher.argv(self._dir, "worker.py"),
            self.launcher.cwd(self._dir),
            self.options,
            stdin=subprocess.PIPE,
        )
        self._process = process
        for code in self._loaded:
            outcome = self._request(process, {"op": "load", "code": code})
            if outcome.error:
                break
        return process

    def _request(self, process: SandboxProcess, request: dict[str, Any]) -> CallOutcome:
        nonce = secrets.token_hex(8)
        line = json.dumps({**request, "nonce": nonce}) + "\n"
        proc = process.proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(line.encode("utf-8"))
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._dead(process, "the sandbox worker is not running")
        deadline = time.monotonic() + self.options.timeout_s
        buffer = b""
        cap = self.options.max_output_bytes * 2 + 4096
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        try:
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return self._dead(
                        process,
                        f"the call took longer than {self.options.timeout_s:g} s",
                        "timeout",
                    )
                if not selector.select(timeout=min(remaining, 0.1)):
                    if proc.poll() is not None:
                        return self._dead(process, "the sandbox worker died")
                    continue
                data = os.read(proc.stdout.fileno(), 65536)
                if not data:
                    return self._dead(process, "the sandbox worker died")
                buffer += data
                if len(buffer) > cap:
                    return self._dead(
                        process, "the worker sent more than the output limit", "output"
                    )
        finally:
            selector.close()
        first, _, rest = buffer.partition(b"\n")
        try:
            answer = json.loads(first)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or answer.get("nonce") != nonce or rest.strip():
            return self._dead(
                process, "the tool code tampered with the sandbox worker's channel", "protocol"
            )
        output = str(answer.get("output", ""))
        if answer.get("truncated"):
            output += "\n[output truncated]"
        return CallOutcome(
            output, answer.get("error"), "output" if answer.get("truncated") else None
        )

    def _dead(self, process: SandboxProcess, message: str, limit: str | None = None) -> CallOutcome:
        process.kill()
        stderr = b""
        if process.proc.stderr is not None:
            try:
                os.set_blocking(process.proc.stderr.fileno(), False)
                stderr = process.proc.stderr.read() or b""
            except (OSError, ValueError):
                stderr = b""
        text = stderr.decode("utf-8", "replace")
        limit = limit or classify(process, text, None)
        process.close()
        self._process = None
        self.restarts += 1
        detail = f" (limit: {limit})" if limit else ""
        return CallOutcome("", f"{message}{detail}; its state was lost", limit)

    def load(self, code: str) -> CallOutcome:
        """Define functions (and state) from ``code`` in the worker."""
        process = self._process or self._start()
        outcome = self._request(process, {"op": "load", "code": code})
        if not outcome.error:
            self._loaded.append(code)
        return outcome

    def call(self, name: str, arguments: dict[str, Any]) -> CallOutcome:
        """Call a loaded function with keyword ``arguments``; never raises."""
        process = self._process or self._start()
        return self._request(process, {"op": "call", "name": name, "arguments": arguments})

    def close(self) -> None:
        if self._process is not None:
            self._process.close()
            self._process = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> SandboxSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
