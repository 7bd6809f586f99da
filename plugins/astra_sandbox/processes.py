"""Starting, watching and killing one sandboxed process tree."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Sequence

from astra_core.errors import AstraError
from astra_sandbox.launch import CLEAN_ENV
from astra_sandbox.limits import PidsCgroup, apply_rlimits, rlimits
from astra_sandbox.options import SandboxOptions

# The child waits at this gate (reading one line of its stdin) until the host has set its limits
# and cgroup, then becomes the sandbox. That avoids a preexec_fn, which forces a full fork of
# the host (16 ms with torch loaded, more for a big trainer) and is unsafe in a threaded host.
GATE = 'read -r _ || exit 125; exec "$@"'


class SandboxProcess:
    """A process started under the limits; ``kill()`` ends it and everything it started.

    The process is reaped with ``wait4`` so that the CPU time it (and the children it waited
    for) used is known: that is how a CPU-limit kill is told from any other."""

    def __init__(
        self, argv: Sequence[str], cwd: str, options: SandboxOptions, *, keep_stdin: bool
    ) -> None:
        """``keep_stdin``: the host keeps writing to its stdin (a session); otherwise the code
        reads end-of-file there."""
        self.options = options
        self.cgroup = PidsCgroup(options.max_processes)
        env = {**CLEAN_ENV, "ASTRA_SANDBOX_MAX_OUTPUT": str(options.max_output_bytes)}
        try:
            self.proc = subprocess.Popen(
                ["/bin/sh", "-c", GATE, "sh", *argv],
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            self.cgroup.close()
            raise AstraError(f"the sandbox could not start {argv[0]!r}: {exc}") from exc
        assert self.proc.stdin is not None
        try:
            if self.cgroup.path is not None:
                (self.cgroup.path / "cgroup.procs").write_text(str(self.proc.pid))
            apply_rlimits(self.proc.pid, rlimits(options))
            self.proc.stdin.write(b"go\n")  # open the gate
            self.proc.stdin.flush()
            if not keep_stdin:
                self.proc.stdin.close()
        except OSError as exc:  # never let it run without its limits
            self.close()
            raise AstraError(f"the sandbox could not start under its limits: {exc}") from exc
        self.started = time.monotonic()
        self.cpu_s = 0.0

    # -- reaping -------------------------------------------------------------------------------
    # The process is only reaped after its group was killed: until then its zombie holds the
    # PID, so the group ID cannot have been reused by an unrelated process.

    def exited(self) -> bool:
        """Whether the main process has ended (without reaping it)."""
        if self.proc.returncode is not None:
            return True
        try:
            flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
            return os.waitid(os.P_PID, self.proc.pid, flags) is not None
        except ChildProcessError:
            return True

    def _reap(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.proc.returncode is None:
            try:
                pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            except ChildProcessError:
                self.proc.returncode = -signal.SIGKILL
                return
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.cpu_s = usage.ru_utime + usage.ru_stime
                return
            if time.monotonic() >= deadline:
                return
            time.sleep(0.001)

    # -- ending --------------------------------------------------------------------------------

    def kill(self) -> None:
        """End the process, everything in its group and (where there is one) its cgroup."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        # children that left the process group are still in the cgroup; under bubblewrap they
        # die with the sandbox's PID namespace anyway
        for _ in range(100):
            pids = self.cgroup.pids()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)
        self._reap(timeout=5)

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
    Output past the cap is dropped and the process killed at once (a flood would otherwise run
    until the wall clock)."""
    cap = process.options.max_output_bytes
    chunks: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    sizes = {"stdout": 0, "stderr": 0}
    selector = selectors.DefaultSelector()
    assert process.proc.stdout is not None and process.proc.stderr is not None
    selector.register(process.proc.stdout, selectors.EVENT_READ, "stdout")
    selector.register(process.proc.stderr, selectors.EVENT_READ, "stderr")
    deadline = process.started + timeout_s
    limit: str | None = None
    ended = False
    try:
        while selector.get_map():
            now = time.monotonic()
            if now >= deadline:
                limit = "timeout"
                break
            if not ended and process.exited():
                # the program is done: what it left running must not hold the pipes open
                ended = True
                process.kill()
                deadline = min(deadline, now + 1.0)
            for key, _ in selector.select(timeout=min(deadline - now, 0.05)):
                data = os.read(key.fd, 65536)
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                name = key.data
                chunks[name].append(data[: max(0, cap - sizes[name])])
                sizes[name] += len(data)
                if sizes[name] > cap:
                    limit = "output"
            if limit == "output":
                break
    finally:
        selector.close()
        process.kill()
    out = b"".join(chunks["stdout"]).decode("utf-8", "replace")
    err = b"".join(chunks["stderr"]).decode("utf-8", "replace")
    return out, err, limit


def _signalled(code: int | None, sig: int) -> bool:
    # a plain child reports -SIG; bubblewrap reports 128 + SIG for the program it ran
    return code is not None and code in (-sig, 128 + sig)


def classify(process: SandboxProcess, stderr: str, limit: str | None) -> str | None:
    """Name the limit a finished process ran into, from its exit, CPU time and what it printed."""
    if limit:
        return limit
    code = process.proc.returncode
    if _signalled(code, signal.SIGXCPU) or (
        _signalled(code, signal.SIGKILL) and process.cpu_s >= process.options.cpu_s - 0.05
    ):
        return "cpu"
    if "MemoryError" in stderr or "Cannot allocate memory" in stderr:
        return "memory"
    if process.processes_hit(stderr):
        return "processes"
    if _signalled(code, signal.SIGXFSZ) or "File too large" in stderr:
        return "file-size"
    if "Too many open files" in stderr:
        return "open-files"
    if "No space left on device" in stderr:
        return "tmp-space"
    return None
