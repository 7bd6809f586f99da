"""How a sandboxed Python process is started: the command line and environment per backend."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import warnings
from pathlib import Path

from astra_core.errors import AstraError
from astra_sandbox.options import SandboxOptions

log = logging.getLogger("astra.sandbox")

CLEAN_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
}
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc")
INSIDE = "/sandbox"


def python_executable(options: SandboxOptions) -> str:
    return options.python or sys.executable


class BubblewrapLauncher:
    """No network, read-only system and Python, a private writable /tmp, fresh PID/IPC/UTS
    namespaces; nothing of the host's home or working directories is visible."""

    name = "bubblewrap"

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.bwrap = shutil.which("bwrap")
        if self.bwrap is None:
            raise AstraError(
                "sandbox 'bubblewrap' needs the bwrap program (Debian/Ubuntu: apt-get install "
                "bubblewrap); or choose sandbox 'subprocess', which does not isolate"
            )

    def _python_dirs(self) -> list[str]:
        dirs = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), sys.prefix}
        exe = python_executable(self.options)
        dirs.add(os.path.dirname(os.path.realpath(exe)))
        dirs.add(os.path.dirname(os.path.abspath(exe)))
        # keep the system dirs bound once, as they are
        return sorted(
            d for d in dirs if d and not any(d == s or d.startswith(s + "/") for s in SYSTEM_DIRS)
        )

    def argv(self, host_dir: Path, script: str) -> list[str]:
        assert self.bwrap is not None
        cmd = [self.bwrap, "--unshare-all", "--die-with-parent", "--new-session"]
        for d in SYSTEM_DIRS:
            cmd += ["--ro-bind-try", d, d]
        for d in self._python_dirs():
            cmd += ["--ro-bind", d, d]
        cmd += [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "--ro-bind",
            str(host_dir),
            INSIDE,
            "--remount-ro",
            "/",
            "--chdir",
            "/tmp",
        ]
        return [*cmd, python_executable(self.options), "-I", f"{INSIDE}/{script}"]

    def cwd(self, host_dir: Path) -> str:
        return str(host_dir)


_warned = False


class SubprocessLauncher:
    """A plain child process with the same resource limits, for machines without bubblewrap.
    It does NOT isolate the file system or the network."""

    name = "subprocess"

    def __init__(self, options: SandboxOptions) -> None:
        global _warned
        self.options = options
        if not _warned:
            _warned = True
            message = (
                "sandbox 'subprocess' limits CPU, memory, processes, files and output but does "
                "NOT isolate the file system or the network: untrusted code can read and write "
                "your files. Install bubblewrap and use sandbox 'bubblewrap' for real isolation."
            )
            log.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    def argv(self, host_dir: Path, script: str) -> list[str]:
        return [python_executable(self.options), "-I", str(host_dir / script)]

    def cwd(self, host_dir: Path) -> str:
        return str(host_dir)


Launcher = BubblewrapLauncher | SubprocessLauncher
