"""Which sandbox may run which code: LLM-written code only where the host is isolated.

A sandbox says whether it isolates the host with ``isolated`` (bubblewrap: true; the plain
``subprocess`` backend: false) and whether its config allowed running untrusted code anyway with
``allow_unisolated``. Sandboxes from older plugins that say neither count as unisolated.
"""

from __future__ import annotations

from typing import Any

from astra_core.errors import UnisolatedSandboxRefused
from astra_core.records import Arena

__all__ = [
    "LLM_WRITTEN",
    "TOOL_CODE_ORIGIN",
    "is_isolated",
    "llm_written",
    "require_isolation",
]

# An arena's ``metadata[TOOL_CODE_ORIGIN]``; LLM_WRITTEN marks tool code an LLM wrote (arenas
# synthesized from questions, the authors' released RL rows), which is untrusted.
TOOL_CODE_ORIGIN = "tool_code_origin"
LLM_WRITTEN = "llm"


def is_isolated(sandbox: Any) -> bool:
    """Whether ``sandbox`` isolates the host (files, network) from the code it runs."""
    return bool(getattr(sandbox, "isolated", False))


def llm_written(arena: Arena) -> bool:
    """Whether an LLM wrote ``arena``'s tool code (its metadata says so)."""
    return arena.metadata.get(TOOL_CODE_ORIGIN) == LLM_WRITTEN


def require_isolation(sandbox: Any, *, what: str) -> None:
    """Raise :class:`UnisolatedSandboxRefused` unless ``sandbox`` may run untrusted code ``what``
    (e.g. "LLM-written tool code of arena 3f2a..."): it isolates the host, or its config set
    ``allow_unisolated = true``."""
    if is_isolated(sandbox) or bool(getattr(sandbox, "allow_unisolated", False)):
        return
    name = getattr(sandbox, "name", type(sandbox).__name__)
    raise UnisolatedSandboxRefused(
        f"sandbox {name!r} does not isolate the host, and {what} is untrusted: use the "
        "'bubblewrap' sandbox (apt-get install bubblewrap), or set allow_unisolated = true in "
        "that sandbox's options to run it unisolated on purpose"
    )
