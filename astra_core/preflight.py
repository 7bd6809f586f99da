"""What a run needs before its first stage: the checks of every component a config names.

A component declares its run-time needs when it is registered:
``registry.add(name, factory, options=..., preflight=check)``, where ``check(options, base_dir)``
returns the ``Problem`` s it finds on this machine (a program missing from PATH, a package not
installed, an endpoint that does not answer) and ``base_dir`` is the config file's folder, which
relative paths in options start from. ``preflight_problems`` walks a resolved config, nested
components included (a trainer's ``sandbox``, a sampler's ``llm_backend``), and asks each
component's check; ``astra config check`` and the start of ``astra run`` refuse a config with
one line per problem and its fix, before anything is written.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from astra_core.errors import PluginError, PreflightFailed
from astra_core.options import KIND_METADATA_KEY, ComponentSpec

if TYPE_CHECKING:
    from astra_core.config import RunConfig
    from astra_core.registry import ComponentRegistry

__all__ = [
    "Problem",
    "check_preflight",
    "missing_module",
    "missing_program",
    "preflight_problems",
    "problem_line",
]


@attrs.frozen
class Problem:
    """One thing a component needs at run time that this machine lacks, and how to fix it.

    A component's check fills ``message`` and ``fix``; the core fills ``component`` (e.g.
    ``sandbox 'bubblewrap'``) and ``key`` (where the config names it). A ``"warning"`` is
    reported but does not stop a run (something optional, like the report's plot, is lost).
    ``preflight_problems`` reports a problem that several components meet once, with every
    key (comma-separated)."""

    message: str
    fix: str
    severity: Literal["error", "warning"] = "error"
    component: str = ""
    key: str = ""


def missing_program(program: str, *, fix: str, why: str = "") -> list[Problem]:
    """``[Problem]`` when ``program`` is not on PATH, ``[]`` when it is."""
    if shutil.which(program) is not None:
        return []
    need = f"needs the {program} program" + (f" ({why})" if why else "")
    return [Problem(f"{need}, which is not on PATH", fix)]


def missing_module(
    module: str, *, fix: str, why: str = "", severity: Literal["error", "warning"] = "error"
) -> list[Problem]:
    """``[Problem]`` when the Python package ``module`` cannot be imported, ``[]`` when it can
    (found without importing it)."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a broken one
        found = False
    if found:
        return []
    need = f"needs the Python package {module}" + (f" ({why})" if why else "")
    return [Problem(f"{need}, which is not installed", fix, severity)]


def problem_line(problem: Problem) -> str:
    """The one line a problem is reported in: where, what, and the fix."""
    where = f"[{problem.key}] " if problem.key else ""
    who = f"{problem.component} " if problem.component else ""
    return f"{where}{who}{problem.message}; fix: {problem.fix}"


def preflight_problems(
    config: RunConfig,
    registry: ComponentRegistry,
    *,
    stages: Sequence[str] | None = None,
) -> list[Problem]:
    """Ask every component that ``stages`` (default: the stages the config runs) and the
    trackers name, nested ones included, what this machine lacks. ``config`` must be resolved
    (``RunConfig.resolve``). A check that raises is a ``PluginError`` naming its plugin."""
    base_dir = config.base_dir
    found: list[Problem] = []
    for stage in config.stage_order if stages is None else stages:
        found += _walk(config.stages[stage], stage, registry, base_dir)
    found += _walk(config.tracking, "tracking", registry, base_dir)
    # One problem met by several components (bwrap, for every stage's sandbox) is one line.
    merged: dict[tuple[str, str, str, str], list[str]] = {}
    for p in found:
        merged.setdefault((p.severity, p.component, p.message, p.fix), []).append(p.key)
    return [
        Problem(message, fix, severity, component, ", ".join(dict.fromkeys(keys)))
        for (severity, component, message, fix), keys in merged.items()
    ]


def check_preflight(
    config: RunConfig,
    registry: ComponentRegistry,
    *,
    stages: Sequence[str] | None = None,
) -> list[Problem]:
    """Raise ``PreflightFailed`` (one line per problem and its fix, the warnings after them)
    when a component of ``stages`` lacks something it needs; else return the warnings, which do
    not stop a run."""
    problems = preflight_problems(config, registry, stages=stages)
    errors = [problem_line(p) for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity == "warning"]
    if errors:
        raise PreflightFailed(
            errors, path=config.path, warnings=[problem_line(p) for p in warnings]
        )
    return warnings


def _walk(options: Any, key: str, registry: ComponentRegistry, base_dir: Path) -> list[Problem]:
    """The problems of the components inside ``options`` (an attrs instance), depth first."""
    if options is None or not attrs.has(type(options)):
        return []
    problems: list[Problem] = []
    for field in attrs.fields(type(options)):
        value = getattr(options, field.name)
        sub = f"{key}.{field.name}"
        kind = field.metadata.get(KIND_METADATA_KEY)
        items = list(enumerate(value)) if isinstance(value, tuple) else [(None, value)]
        for index, item in items:
            where = sub if index is None else f"{sub}[{index}]"
            if kind and isinstance(item, ComponentSpec):
                problems += _component(kind, item, where, registry, base_dir)
            elif attrs.has(type(item)):  # a nested options table (a rollout, lora, backoff...)
                problems += _walk(item, where, registry, base_dir)
    return problems


def _component(
    kind: str, spec: ComponentSpec, key: str, registry: ComponentRegistry, base_dir: Path
) -> list[Problem]:
    info = registry.get(kind, spec.name, key=key)
    problems: list[Problem] = []
    if info.preflight is not None:
        try:
            found = list(info.preflight(spec.options, base_dir))
        except Exception as exc:
            raise PluginError(
                info.plugin,
                info.distribution,
                f"the preflight check of {kind} {spec.name!r} failed: {exc}",
            ) from exc
        problems += [
            attrs.evolve(p, component=p.component or f"{kind} {spec.name!r}", key=p.key or key)
            for p in found
        ]
    return problems + _walk(spec.options, key, registry, base_dir)
