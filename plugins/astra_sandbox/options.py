"""Limits every sandbox backend enforces, and what only the unisolated backend adds."""

from __future__ import annotations

import attrs

from astra_core.options import option


@attrs.frozen
class SandboxOptions:
    timeout_s: float = option("wall-clock limit of one run or one call", 10.0)
    cpu_s: int = option("CPU seconds per process (a persistent worker: for its whole life)", 60)
    memory_mb: int = option("address-space limit per process", 1024)
    max_processes: int = option("processes and threads the code may have at once", 32)
    max_open_files: int = option("open file descriptors", 64)
    max_output_bytes: int = option("stdout/stderr kept per run or call; more is cut off", 65536)
    max_file_mb: int = option("largest file the code may write (in its private /tmp)", 16)
    max_tmp_mb: int = option("size of the private /tmp (bubblewrap; it is held in memory)", 64)
    python: str = option("interpreter inside the sandbox (empty: the one running ASTRA)", "")
    site_packages: bool = option(
        "the interpreter's site-packages are importable (false: python -S, the standard "
        "library only; each start is ~20 ms sooner, most with an editable install)",
        True,
    )

    def __attrs_post_init__(self) -> None:
        for name in (
            "timeout_s",
            "cpu_s",
            "memory_mb",
            "max_processes",
            "max_open_files",
            "max_output_bytes",
            "max_file_mb",
            "max_tmp_mb",
        ):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"sandbox option {name} must be positive, got {value}")


@attrs.frozen
class SubprocessOptions(SandboxOptions):
    """The ``subprocess`` backend's options: the limits, and whether untrusted code may run."""

    allow_unisolated: bool = option(
        "run LLM-written (untrusted) tool code here anyway, with the host's files and network "
        "reachable; without it such code is refused (use the 'bubblewrap' sandbox instead)",
        False,
    )
