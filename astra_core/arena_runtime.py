"""The part every sandbox-backed arena runtime shares: one sandbox session per episode.

``SandboxSessionRuntime.reset()`` closes the last session, opens a fresh one (``sandbox.session()``
where the sandbox offers it, else the subclass's ``fallback_session()``) and loads every offered
tool's code into it; a tool that does not load fails only its own calls (``load_errors``).
``close()`` ends the session; a runtime is also a context manager (``reset`` on entry). An arena
whose tool code an LLM wrote (``astra_core.sandbox_policy.llm_written``) is refused at
construction, before any of its code runs, unless the sandbox isolates the host or its config
allows unisolated runs (``UnisolatedSandboxRefused`` naming the arena). What a
call does, how it is checked and what it returns is the subclass's: see the ``ArenaRuntime``
Protocol in ``astra_core.protocols``.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from astra_core.protocols import Sandbox
from astra_core.records import Arena
from astra_core.sandbox_policy import llm_written, require_isolation

__all__ = ["SandboxSessionRuntime"]


class SandboxSessionRuntime:
    """Base of runtimes whose tools live in one sandbox session per episode."""

    def __init__(self, arena: Arena, sandbox: Sandbox, *, timeout_s: float | None = None) -> None:
        if llm_written(arena):
            require_isolation(sandbox, what=f"the LLM-written tool code of arena {arena.id}")
        self.arena = arena
        self.sandbox = sandbox
        self.timeout_s = timeout_s
        self.load_errors: dict[str, str] = {}
        self._session: Any = None

    def fallback_session(self) -> Any:
        """A session over a sandbox without ``session()`` (one that only has ``run(code)``)."""
        raise NotImplementedError(
            f"{type(self).__name__} needs a sandbox with session(); "
            f"{type(self.sandbox).__name__} has none"
        )

    def load_tool(self, session: Any, name: str, code: str) -> Any:
        """Load one tool's code into ``session``; returns the session's outcome."""
        return session.load(code)

    def load_error(self, outcome: Any) -> str:
        """The message recorded for a tool whose load returned a failed outcome."""
        return str(outcome.error)

    def reset(self) -> None:
        """A fresh session with every tool loaded; earlier state is gone."""
        self.close()
        self.load_errors = {}
        factory = getattr(self.sandbox, "session", None)
        session = factory() if callable(factory) else self.fallback_session()
        for name in dict.fromkeys(self.arena.tool_names):  # every offered tool, once, in order
            code = self.arena.tool_code.get(name)
            if code is None:
                self.load_errors[name] = "the arena has no code for this tool"
                continue
            try:
                outcome = self.load_tool(session, name, code)
            except Exception as exc:  # a tool that does not load fails only its own calls
                self.load_errors[name] = f"{type(exc).__name__}: {exc}"
                continue
            if outcome is not None and getattr(outcome, "error", None):
                self.load_errors[name] = self.load_error(outcome)
        self._session = session

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            closer = getattr(session, "close", None)
            if callable(closer):
                closer()

    def __enter__(self) -> Any:
        self.reset()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
