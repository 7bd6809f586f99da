"""The sandbox components: run a script once, or open a persistent session."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from astra_core.protocols import SandboxResult
from astra_sandbox.launch import BubblewrapLauncher, SubprocessLauncher, site_hint
from astra_sandbox.options import SandboxOptions, SubprocessOptions
from astra_sandbox.processes import SandboxProcess, classify, collect
from astra_sandbox.session import SandboxSession


class Sandbox:
    """``run(code)`` executes a script in a fresh process; ``session()`` starts a persistent
    worker for many calls (one per RL episode). ``isolated`` and ``allow_unisolated`` are what
    ``astra_core.sandbox_policy`` asks before untrusted code runs here."""

    def __init__(
        self, launcher: BubblewrapLauncher | SubprocessLauncher, options: SandboxOptions
    ) -> None:
        self.launcher = launcher
        self.options = options
        self.name = launcher.name
        self.isolated = launcher.isolates
        # only the subprocess backend's options have it; an isolating sandbox never needs it
        self.allow_unisolated = bool(getattr(options, "allow_unisolated", False))

    def run(self, code: str, *, timeout_s: float | None = None) -> SandboxResult:
        """Run ``code`` as a script in a fresh sandboxed process; never raises for anything the
        code does (``limit`` names the limit it hit)."""
        directory = Path(tempfile.mkdtemp(prefix="astra-run-"))
        try:
            (directory / "main.py").write_text(code, encoding="utf-8", errors="replace")
            t0 = time.monotonic()
            process = SandboxProcess(
                self.launcher.argv(directory, "main.py"),
                self.launcher.cwd(directory),
                self.options,
                keep_stdin=False,
            )
            try:
                stdout, stderr, limit = collect(process, timeout_s or self.options.timeout_s)
                limit = classify(process, stderr, limit)
                code_ = process.proc.returncode if process.proc.returncode is not None else -9
            finally:
                process.close()
            stderr = site_hint(self.options, stderr)
            return SandboxResult(stdout, stderr, code_, limit, round(time.monotonic() - t0, 4))
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def session(self, *, timeout_s: float | None = None) -> SandboxSession:
        """A persistent worker for one episode (see ``astra_sandbox.session``): load tool code
        once, then call its functions many times for far less than a process each.
        ``timeout_s`` overrides the wall clock of each call."""
        return SandboxSession(self.launcher, self.options, timeout_s=timeout_s)


def make_bubblewrap(options: SandboxOptions) -> Sandbox:
    return Sandbox(BubblewrapLauncher(options), options)


def make_subprocess(options: SubprocessOptions) -> Sandbox:
    return Sandbox(SubprocessLauncher(options), options)
