"""Errors the user sees. Each one names the file, record or plugin at fault."""

from __future__ import annotations

__all__ = [
    "AstraError",
    "ConfigError",
    "LLMCallFailed",
    "PluginError",
    "PreflightFailed",
    "RecordError",
    "StepRejected",
    "StoreError",
    "UnisolatedSandboxRefused",
    "UnknownComponentError",
]


class AstraError(Exception):
    """Base of every error ASTRA raises on purpose; the CLI prints it without a traceback."""


class PluginError(AstraError):
    """A plugin could not be loaded, failed validation or clashed with another plugin."""

    def __init__(self, plugin: str, distribution: str | None, cause: str) -> None:
        self.plugin = plugin
        self.distribution = distribution
        self.cause = cause
        dist = f" (distribution {distribution})" if distribution else ""
        super().__init__(f"plugin {plugin!r}{dist}: {cause}")


class ConfigError(AstraError):
    """The run config is wrong; the message carries the file and the key's dotted path."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = ""
        if path and key:
            where = f"{path}: [{key}] "
        elif path:
            where = f"{path}: "
        elif key:
            where = f"[{key}] "
        super().__init__(f"{where}{message}")


class PreflightFailed(ConfigError):
    """Components a config names need what this machine lacks (a program, a package, a
    reachable endpoint): one line per problem with its fix, raised before any stage runs.
    ``warnings`` (lines too) are what would only be lost, listed after the problems."""

    def __init__(
        self, lines: list[str], *, path: str | None = None, warnings: list[str] | None = None
    ) -> None:
        self.lines = list(lines)
        self.warnings = list(warnings or ())
        count = f"{len(lines)} problem" + ("s" if len(lines) != 1 else "")
        body = [f"  {line}" for line in self.lines]
        body += [f"  warning: {line}" for line in self.warnings]
        super().__init__(
            f"{count} to fix before the run can start (nothing was run):\n" + "\n".join(body),
            path=path,
        )


class UnknownComponentError(ConfigError):
    """A config names a component that no plugin registered."""


class RecordError(AstraError):
    """A record could not be read or does not satisfy its contract."""


class StoreError(AstraError):
    """A dataset on disk is damaged in a way resume cannot repair."""


class LLMCallFailed(AstraError):
    """One chat call of an ``llm_backend`` failed for good; the record that needed it is failed,
    the run goes on. Backends raise it (or a subclass) for a call that cannot succeed; the
    components that call a backend catch it. A misconfigured endpoint is not one of these."""

    def __init__(
        self,
        message: str,
        *,
        backend: str = "",
        attempts: int = 0,
        status: int | None = None,
        key: str | None = None,
    ) -> None:
        self.backend = backend
        self.attempts = attempts
        self.status = status
        self.key = key
        where = f"llm_backend {backend!r}: " if backend else ""
        super().__init__(f"{where}{message}")


class StepRejected(AstraError):
    """A step of a trajectory sampler or an environment generator turned its input down (a chain
    that cannot be run, a decomposition that breaks the leaf rule, ...); the sampler or generator
    drops that input with ``reason`` (counted in the manifest) and ``detail``, and goes on.
    Raised by ``trajectory_step`` and ``arena_step`` components from any plugin."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class UnisolatedSandboxRefused(ConfigError):
    """Untrusted code (LLM-written tools) was to run in a sandbox that does not isolate the host,
    and the config did not allow it (``allow_unisolated``)."""
