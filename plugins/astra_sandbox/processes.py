"""Starting, watching and killing one sandboxed process tree."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from astra_sandbox.launch import CLEAN_ENV
from astra_sandbox.limits import PidsCgroup, preexec
from astra_sandbox.options import SandboxOptions


class SandboxProcess:
    """A process started under the limits; ``kill()`` ends it and everything it started."""

    def __init__(
        self, argv: Sequence[str], cwd: str, options: SandboxOptions, *, stdin: int | None
    ) -> None:
        self.options = options
        self.cgroup = PidsCgroup(options.max_processes)
        env = {**CLEAN_ENV, "ASTRA_SANDBOX_MAX_OUTPUT": str(options.max_output_bytes)}
        self.proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=preexec(options, self.cgroup),
            close_fds=True,
        )
        self.started = time.monotonic()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.cgroup.path is not None:
            # children that left the process group are still in the cgroup
            for _ in range(50):
                try:
                    pids = [int(p) for p in (self.cgroup.path / "cgroup.procs").read_text().split()]
                except OSError:
                    break
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.01)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def close(self) -> None:
        self.kill()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self.cgroup.close()

    def processes_hit(self, stderr: str) -> bool:
        return self.cgroup.hit() or "Resource temporarily unavailable" in stderr


def collect(process: SandboxProcess, timeout_s: float) -> tuple[str, str, str | None]:
    """Read stdout and stderr until the process exits; enforce the wall clock and output cap.

    Returns ``(stdout, stderr, limit)`` where ``limit`` is "timeout", "output" or ``None``.
    """
    cap = process.options.max_output_bytes
    chunks: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    sizes = {"stdout": 0, "stderr": 0}
    selector = selectors.DefaultSelector()
    assert process.proc.stdout is not None and process.proc.stderr is not None
    selector.register(process.proc.stdout, selectors.EVENT_READ, "stdout")
    selector.register(process.proc.stderr, selectors.EVENT_READ, "stderr")
    deadline = process.started + timeout_s
    limit: str | None = None
    open_streams = 2
    while open_streams:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            limit = "timeout"
            break
        if process.proc.poll() is not None:
            # the main process is gone: whatever it left running must not hold the pipes
            process.kill()
        for key, _ in selector.select(timeout=min(remaining, 0.05)):
            data = os.read(key.fileobj.fileno(), 65536)  # type: ignore[union-attr]
            if not data:
                selector.unregister(key.fileobj)
                open_streams -= 1
                continue
            name = key.data
            keep = max(0, cap - sizes[name])
            chunks[name].append(data[:keep])
            sizes[name] += len(data)
            if sizes[name] > cap:
                limit = "output"
        if limit == "output":
            break
    selector.close()
    process.kill()
    out = b"".join(chunks["stdout"]).decode("utf-8", "replace")
    err = b"".join(chunks["stderr"]).decode("utf-8", "replace")
    return out, err, limit


def classify(process: SandboxProcess, stderr: str, limit: str | None) -> str | None:
    """Name the limit a finished process ran into, from its exit and what it printed."""
    if limit:
        return limit
    code = process.proc.returncode
    if code == -signal.SIGXCPU or (code == -signal.SIGKILL and _cpu_exceeded(process)):
        return "cpu"
    if "MemoryError" in stderr or "Cannot allocate memory" in stderr:
        return "memory"
    if process.processes_hit(stderr):
        return "processes"
    if (code is not None and code == -signal.SIGXFSZ) or "File too large" in stderr:
        return "file-size"
    if "Too many open files" in stderr:
        return "open-files"
    return None


def _cpu_exceeded(process: SandboxProcess) -> bool:
    return time.monotonic() - process.started >= process.options.cpu_s


def write_script(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text, encoding="utf-8")
