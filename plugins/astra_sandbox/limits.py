"""Resource limits applied to a sandboxed process before it runs any code."""

from __future__ import annotations

import contextlib
import os
import resource
import uuid
from collections.abc import Callable
from pathlib import Path

from astra_sandbox.options import SandboxOptions

PIDS_CGROUP = Path("/sys/fs/cgroup/pids")


class PidsCgroup:
    """A cgroup (v1 ``pids`` controller) that caps the processes of one sandboxed tree.

    RLIMIT_NPROC does not bind root (and sandboxes often start as root), so where the pids
    controller is writable it is the real fork-bomb limit; elsewhere RLIMIT_NPROC is all there is.
    """

    def __init__(self, max_processes: int) -> None:
        self.path: Path | None = None
        if PIDS_CGROUP.is_dir() and os.access(PIDS_CGROUP, os.W_OK):
            path = PIDS_CGROUP / f"astra-{uuid.uuid4().hex[:12]}"
            try:
                path.mkdir()
                (path / "pids.max").write_text(str(max_processes))
                self.path = path
            except OSError:
                with contextlib.suppress(OSError):
                    path.rmdir()

    def hit(self) -> bool:
        """Whether a fork was refused because of the cap."""
        if self.path is None:
            return False
        try:
            events = (self.path / "pids.events").read_text()
        except OSError:
            return False
        return any(
            line.split()[-1] != "0" for line in events.splitlines() if line.startswith("max")
        )

    def close(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.rmdir()
            self.path = None


def preexec(options: SandboxOptions, cgroup: PidsCgroup | None) -> Callable[[], None]:
    """What the child does between fork and exec: own session, cgroup, rlimits."""
    cgroup_procs = str(cgroup.path / "cgroup.procs") if cgroup and cgroup.path else None

    def apply() -> None:
        os.setsid()
        if cgroup_procs:
            with open(cgroup_procs, "w") as fh:
                fh.write(str(os.getpid()))
        mb = 1024 * 1024
        limits = (
            (resource.RLIMIT_CPU, options.cpu_s),
            (resource.RLIMIT_AS, options.memory_mb * mb),
            (resource.RLIMIT_NPROC, options.max_processes),
            (resource.RLIMIT_NOFILE, options.max_open_files),
            (resource.RLIMIT_FSIZE, options.max_file_mb * mb),
            (resource.RLIMIT_CORE, 0),
        )
        for kind, value in limits:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(kind, (value, value))

    return apply
