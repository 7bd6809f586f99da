"""Limits every sandbox backend enforces."""

from __future__ import annotations

import attrs


def _opt(help_text: str, default: object) -> object:
    return attrs.field(default=default, metadata={"help": help_text})


@attrs.frozen
class SandboxOptions:
    timeout_s: float = _opt("wall-clock limit of one run or one call", 10.0)  # type: ignore[assignment]
    cpu_s: int = _opt("CPU seconds per process (a persistent worker: for its whole life)", 60)  # type: ignore[assignment]
    memory_mb: int = _opt("address-space limit per process", 1024)  # type: ignore[assignment]
    max_processes: int = _opt("processes and threads the code may have at once", 32)  # type: ignore[assignment]
    max_open_files: int = _opt("open file descriptors", 64)  # type: ignore[assignment]
    max_output_bytes: int = _opt("stdout/stderr kept per run or call; more is cut off", 65536)  # type: ignore[assignment]
    max_file_mb: int = _opt("largest file the code may write (in its private /tmp)", 16)  # type: ignore[assignment]
    max_tmp_mb: int = _opt("size of the private /tmp (bubblewrap; it is held in memory)", 64)  # type: ignore[assignment]
    python: str = _opt("interpreter inside the sandbox (empty: the one running ASTRA)", "")  # type: ignore[assignment]

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
