"""What the sandboxes need on this machine, checked before a run starts: the bwrap program
(and user namespaces) for ``bubblewrap``, the interpreter its ``python`` option names for both."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from astra_core.preflight import Problem
from astra_sandbox.launch import bubblewrap_problem
from astra_sandbox.options import SandboxOptions

# The package managers that ship bubblewrap, and how each installs it.
_INSTALLERS = (
    ("apt-get", "apt-get install -y bubblewrap"),
    ("dnf", "dnf install -y bubblewrap"),
    ("yum", "yum install -y bubblewrap"),
    ("zypper", "zypper install -y bubblewrap"),
    ("pacman", "pacman -S --noconfirm bubblewrap"),
    ("apk", "apk add bubblewrap"),
)


def bwrap_install_command() -> str:
    """The one command that installs bubblewrap here (``sudo`` in front unless root)."""
    for manager, command in _INSTALLERS:
        if shutil.which(manager):
            return command if os.geteuid() == 0 else f"sudo {command}"
    return "install your system's bubblewrap package (https://github.com/containers/bubblewrap)"


def python_problems(options: SandboxOptions, base_dir: Path) -> list[Problem]:
    """The ``python`` option names an interpreter that is not there."""
    if not options.python:
        return []
    found = shutil.which(options.python) if os.sep not in options.python else options.python
    if found and os.access(found, os.X_OK):
        return []
    return [
        Problem(
            f"runs code with python = {options.python!r}, which is not an executable program",
            'set python to an installed interpreter, or to "" for the one running ASTRA',
        )
    ]


def bubblewrap_problems(options: SandboxOptions, base_dir: Path) -> list[Problem]:
    """bwrap missing, or unable to make namespaces here, and the interpreter option."""
    problems = python_problems(options, base_dir)
    if shutil.which("bwrap") is None:
        return [
            Problem(
                "needs the bwrap program (bubblewrap), which is not on PATH",
                f"{bwrap_install_command()} (or name the subprocess sandbox, which does not "
                "isolate and runs LLM-written tools only with allow_unisolated = true)",
            ),
            *problems,
        ]
    why = bubblewrap_problem()
    if why is not None:
        problems.insert(
            0,
            Problem(
                f"cannot make a sandbox here: {why}",
                "allow unprivileged user namespaces (Ubuntu 24.04: sysctl -w "
                "kernel.apparmor_restrict_unprivileged_userns=0), or run in a container that "
                "allows them",
            ),
        )
    return problems
