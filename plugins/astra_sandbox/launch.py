"""How a sandboxed Python process is started: the command line and environment per backend."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from astra_core.errors import AstraError
from astra_sandbox.options import SandboxOptions

log = logging.getLogger("astra.sandbox")

CLEAN_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
}
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32")
# Only what programs need from /etc: never shadow, ssh keys, credentials or config with secrets
# (inside, the process may still be uid 0 when ASTRA runs as root, and root owns those files).
ETC_ALLOWED = (
    "alternatives",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "passwd",
    "group",
    "nsswitch.conf",
    "host.conf",
    "hosts",
    "os-release",
    "debian_version",
    "mime.types",
    "protocols",
    "services",
    "locale.alias",
    "magic",
    "magic.mime",
    "ssl",
    "ca-certificates",
    "python3",
    f"python{sys.version_info.major}.{sys.version_info.minor}",
)
INSIDE = "/sandbox"


def python_executable(options: SandboxOptions) -> str:
    """The interpreter as an absolute path: the sandbox runs it from another directory
    (bubblewrap's /tmp, the subprocess backend's scratch directory), where ``.venv/bin/python``
    would not be found. A bare name is looked up on PATH, a relative path from here."""
    python = options.python or sys.executable
    if os.sep not in python:
        return shutil.which(python) or python
    return os.path.abspath(python)


def python_argv(options: SandboxOptions, script: str) -> list[str]:
    """The sandbox's interpreter running ``script``: isolated mode (no PYTHON* variables, no
    user site), and without site processing when the code needs only the standard library
    (site's .pth files, an editable install's finder above all, are most of a start's cost)."""
    flags = ["-I"] if options.site_packages else ["-I", "-S"]
    return [python_executable(options), *flags, script]


def site_hint(options: SandboxOptions, error: str) -> str:
    """``error``, with the reason when it is a missing module and the sandbox was told to
    start without its site-packages (the import would work with them)."""
    if options.site_packages or "ModuleNotFoundError" not in error:
        return error
    return (
        f"{error}\n(this sandbox has site_packages = false: only the standard library can be "
        "imported; set site_packages = true for code that imports installed packages)"
    )


_probed: dict[str, str | None] = {}


def _probe(bwrap: str) -> str | None:
    """Why bwrap cannot make a sandbox here (None: it can); asked once per process."""
    if bwrap not in _probed:
        try:
            done = subprocess.run(
                [
                    bwrap,
                    "--unshare-all",
                    "--die-with-parent",
                    "--cap-drop",
                    "ALL",
                    "--ro-bind",
                    "/",
                    "/",
                    "--",
                    "/bin/true",
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
            _probed[bwrap] = None if done.returncode == 0 else done.stderr.strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            _probed[bwrap] = str(exc)
    return _probed[bwrap]


def _venv_homes(prefixes: set[str]) -> set[str]:
    """The base installations of venvs among ``prefixes`` (their pyvenv.cfg ``home``)."""
    homes = set()
    for prefix in prefixes:
        cfg = Path(prefix) / "pyvenv.cfg"
        if cfg.is_file():
            for line in cfg.read_text(encoding="utf-8", errors="replace").splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "home" and value.strip():
                    home = os.path.realpath(value.strip())
                    homes.add(os.path.dirname(home) if home.endswith("/bin") else home)
    return homes


def bubblewrap_problem() -> str | None:
    """Why the ``bubblewrap`` sandbox cannot work on this machine (None: it can)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    problem = _probe(bwrap)
    return None if problem is None else f"bwrap cannot create namespaces here: {problem}"


class BubblewrapLauncher:
    """No network, no capabilities, read-only system and Python, a private size-capped /tmp,
    fresh PID/IPC/UTS/mount namespaces; nothing of the host's home, working directories or
    secret files in /etc is visible."""

    name = "bubblewrap"
    isolates = True

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise AstraError(
                "sandbox 'bubblewrap' needs the bwrap program (Debian/Ubuntu: apt-get install "
                "bubblewrap); or choose sandbox 'subprocess', which does not isolate"
            )
        problem = _probe(bwrap)
        if problem is not None:
            raise AstraError(
                f"sandbox 'bubblewrap': {bwrap} cannot create namespaces here: {problem}. "
                "Unprivileged user namespaces may be off (Ubuntu 24.04: sysctl "
                "kernel.apparmor_restrict_unprivileged_userns=0), or run in a container that "
                "allows them; sandbox 'subprocess' works without them but does not isolate"
            )
        self.bwrap = bwrap
        python = python_executable(options)
        if not os.access(python, os.X_OK):
            raise AstraError(f"sandbox 'bubblewrap': python {python!r} is not an executable")

    def _python_dirs(self) -> list[str]:
        """The interpreter's prefixes (a venv and its base), where they are outside /usr."""
        exe = python_executable(self.options)
        dirs = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), sys.prefix}
        dirs.add(os.path.dirname(os.path.dirname(os.path.realpath(exe))))
        dirs.add(os.path.dirname(os.path.dirname(os.path.abspath(exe))))
        dirs |= _venv_homes(dirs)
        # a venv under /tmp (e.g. a CI checkout there) is bound over the private tmpfs in argv()
        system = (*SYSTEM_DIRS, "/etc", "/proc", "/dev", INSIDE)
        kept = sorted(d for d in dirs if d not in ("", "/", "/tmp") and os.path.isdir(d))
        kept = [d for d in kept if not any(d == s or d.startswith(s + "/") for s in system)]
        # a dir inside another kept dir is bound with it
        return [d for d in kept if not any(d.startswith(o + "/") for o in kept if o != d)]

    def argv(self, host_dir: Path, script: str) -> list[str]:
        cmd = [
            self.bwrap,
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--hostname",
            "sandbox",
        ]
        for d in SYSTEM_DIRS:
            cmd += ["--ro-bind-try", d, d]
        for entry in ETC_ALLOWED:
            cmd += ["--ro-bind-try", f"/etc/{entry}", f"/etc/{entry}"]
        python_dirs = self._python_dirs()
        in_tmp = [d for d in python_dirs if d.startswith("/tmp/")]
        for d in python_dirs:
            if d not in in_tmp:
                cmd += ["--ro-bind", d, d]
        size = str(self.options.max_tmp_mb * 1024 * 1024)
        cmd += ["--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/tmp"]
        # bound after the tmpfs, which would otherwise hide them; the rest of /tmp stays private
        for d in in_tmp:
            cmd += ["--ro-bind", d, d]
        cmd += [
            "--ro-bind",
            str(host_dir),
            INSIDE,
            "--remount-ro",
            "/",
            "--chdir",
            "/tmp",
            "--",
        ]
        return [*cmd, *python_argv(self.options, f"{INSIDE}/{script}")]

    def cwd(self, host_dir: Path) -> str:
        return str(host_dir)


_warned = False
NO_ISOLATION = (
    "sandbox 'subprocess' limits CPU, memory, processes, files and output but does NOT "
    "isolate the file system or the network: untrusted code can read and write your files "
    "and reach the network (LLM-written tool code is refused unless allow_unisolated = true). "
    "Install bubblewrap and use sandbox 'bubblewrap' for isolation."
)


class SubprocessLauncher:
    """A plain child process with the same resource limits, for machines without bubblewrap.
    It does NOT isolate the file system or the network (it warns once per process)."""

    name = "subprocess"
    isolates = False

    def __init__(self, options: SandboxOptions) -> None:
        global _warned
        self.options = options
        if not _warned:
            _warned = True
            # One log record, not also a warnings.warn: both print to stderr, so it showed twice.
            log.warning(NO_ISOLATION)

    def argv(self, host_dir: Path, script: str) -> list[str]:
        return python_argv(self.options, str(host_dir / script))

    def cwd(self, host_dir: Path) -> str:
        return str(host_dir)


Launcher = BubblewrapLauncher | SubprocessLauncher
