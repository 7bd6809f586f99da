"""Resource limits applied to a sandboxed process before it runs any code."""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import uuid
from pathlib import Path

from astra_sandbox.options import SandboxOptions

log = logging.getLogger("astra.sandbox")
CGROUP_V1_PIDS = Path("/sys/fs/cgroup/pids")
_warned_uncapped = False
CGROUP_V2 = Path("/sys/fs/cgroup")


def _pids_root() -> Path | None:
    """A writable cgroup directory whose children get the ``pids`` controller, if any."""
    if CGROUP_V1_PIDS.is_dir() and os.access(CGROUP_V1_PIDS, os.W_OK):
        return CGROUP_V1_PIDS
    try:
        controllers = (CGROUP_V2 / "cgroup.subtree_control").read_text().split()
    except OSError:
        return None
    if "pids" in controllers and os.access(CGROUP_V2, os.W_OK):
        return CGROUP_V2
    return None


def _remove_stale(root: Path) -> None:
    """Drop empty cgroups left by ASTRA processes that were killed before cleaning up."""
    for path in root.glob("astra-*-*"):
        pid = path.name.split("-")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(OSError):
                path.rmdir()


class PidsCgroup:
    """A cgroup (``pids`` controller, v1 or v2) that caps the processes of one sandboxed tree.

    RLIMIT_NPROC does not bind root and counts every process of the user, so where a pids
    controller is writable (ASTRA as root) it is the exact fork-bomb limit, and it lets
    ``kill()`` find children that left the process group.
    """

    def __init__(self, max_processes: int) -> None:
        global _warned_uncapped
        self.path: Path | None = None
        root = _pids_root()
        if root is None:
            if os.getuid() == 0 and not _warned_uncapped:
                _warned_uncapped = True
                log.warning(
                    "running as root without a writable pids cgroup: the sandbox's "
                    "max_processes is not enforced (RLIMIT_NPROC does not bind root), so a fork "
                    "bomb is stopped only by the wall clock; run ASTRA as a normal user"
                )
            return
        _remove_stale(root)
        path = root / f"astra-{os.getpid()}-{uuid.uuid4().hex[:12]}"
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

    def pids(self) -> list[int]:
        if self.path is None:
            return []
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def close(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.rmdir()
            self.path = None


def user_tasks(uid: int) -> int:
    """Processes and threads whose real user is ``uid``: what RLIMIT_NPROC counts."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", encoding="ascii", errors="replace") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue
        if int(fields.get("Uid", "-1 ").split()[0]) == uid:
            count += int(fields.get("Threads", "1").strip() or 1)
    return count


def nproc_limit(max_processes: int) -> int:
    """RLIMIT_NPROC for a sandbox that may start ``max_processes`` processes.

    The kernel counts all of the user's processes, in and out of the sandbox (namespaces
    included), so the user's current count is added: otherwise a busy user (a CI runner, a
    trainer with many threads) could not even start the sandbox. Root ignores the limit."""
    uid = os.getuid()
    return max_processes if uid == 0 else user_tasks(uid) + max_processes


def _same(value: int) -> tuple[int, int]:
    return value, value


def rlimits(options: SandboxOptions) -> list[tuple[int, tuple[int, int]]]:
    """The (resource, (soft, hard)) limits of a sandboxed process."""
    mb = 1024 * 1024
    return [
        # CPU: SIGXCPU (which says why) at the soft limit, SIGKILL a second later if ignored
        (resource.RLIMIT_CPU, (options.cpu_s, options.cpu_s + 1)),
        (resource.RLIMIT_AS, _same(options.memory_mb * mb)),
        (resource.RLIMIT_NPROC, _same(nproc_limit(options.max_processes))),
        (resource.RLIMIT_NOFILE, _same(options.max_open_files)),
        (resource.RLIMIT_FSIZE, _same(options.max_file_mb * mb)),
        (resource.RLIMIT_CORE, (0, 0)),
    ]


def apply_rlimits(pid: int, limits: list[tuple[int, tuple[int, int]]]) -> None:
    """Set ``limits`` on the (still gated, see ``processes``) process ``pid``; a hard limit
    above the one it inherited cannot be set, so the lower one is kept."""
    for kind, (soft, hard) in limits:
        _, inherited = resource.prlimit(pid, kind)
        if inherited != resource.RLIM_INFINITY:
            soft, hard = min(soft, inherited), min(hard, inherited)
        resource.prlimit(pid, kind, (soft, hard))
