"""Finding, loading, validating and describing plugins.

stevedore discovers the entry points of the group ``astra.plugins`` (bundled plugins included:
the core imports none of them) and pluggy calls their hooks. One-file plugins come from
``--plugin FILE`` and the ``ASTRA_PLUGINS`` variable; ``[plugins] disable`` in a config and the
``ASTRA_DISABLE_PLUGINS`` variable block plugins by name. Any problem stops start-up with one
``PluginError`` naming the plugin, its distribution and the cause.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import pluggy
from stevedore import NamedExtensionManager

from astra_core import hookspecs
from astra_core._markers import PROJECT_NAME
from astra_core.errors import PluginError
from astra_core.protocols import KIND_PROTOCOLS
from astra_core.registry import ComponentRegistry, Registrar

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_DISABLE",
    "ENV_PLUGINS",
    "PluginInfo",
    "PluginSet",
    "load_file_plugin",
    "load_plugins",
]

ENTRY_POINT_GROUP = "astra.plugins"
ENV_PLUGINS = "ASTRA_PLUGINS"
ENV_DISABLE = "ASTRA_DISABLE_PLUGINS"
HOOK_PREFIX = "astra_"

# registration hook -> component kind
REGISTRATION_HOOKS: dict[str, str] = {
    "astra_register_tool_graph_sources": "tool_graph_source",
    "astra_register_tool_graph_builders": "tool_graph_builder",
    "astra_register_trajectory_steps": "trajectory_step",
    "astra_register_trajectory_samplers": "trajectory_sampler",
    "astra_register_environment_generators": "environment_generator",
    "astra_register_arena_steps": "arena_step",
    "astra_register_verifiers": "verifier",
    "astra_register_rl_algorithms": "rl_algorithm",
    "astra_register_llm_backends": "llm_backend",
    "astra_register_tool_executors": "tool_executor",
    "astra_register_sandboxes": "sandbox",
    "astra_register_tool_call_parsers": "tool_call_parser",
    "astra_register_trackers": "tracker",
    "astra_register_trainers": "trainer",
    "astra_register_evaluators": "evaluator",
}


@attrs.frozen
class PluginInfo:
    """One loaded plugin, as ``astra plugins`` shows it."""

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]
    provides: dict[str, list[str]]
    source: str  # "entry-point" or the path of a one-file plugin

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "hooks": list(self.hooks),
            "provides": self.provides,
            "source": self.source,
        }


class _AstraPluginManager(pluggy.PluginManager):
    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        # Like pytest: an unmarked ``astra_*`` function is a hook implementation, so a misspelt
        # hook name is reported instead of silently never being called.
        if opts is None and name.startswith(HOOK_PREFIX):
            method = getattr(plugin, name, None)
            if inspect.isroutine(method):
                return {}
        return opts


def split_names(value: str | None) -> list[str]:
    return [n.strip() for n in (value or "").replace(",", " ").split() if n.strip()]


class PluginSet:
    """The loaded plugins: the pluggy manager (``.hook``), the component registry and where each
    plugin came from. Build it with ``load_plugins``."""

    def __init__(self) -> None:
        self.pm = _AstraPluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.registry = ComponentRegistry(KIND_PROTOCOLS)
        self.disabled: list[str] = []
        self._dist: dict[str, tuple[str | None, str | None, str]] = {}

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def distribution(self, name: str) -> str | None:
        return self._dist.get(name, (None, None, ""))[0]

    def register(
        self,
        plugin: Any,
        name: str,
        *,
        distribution: str | None = None,
        version: str | None = None,
        source: str = "python",
    ) -> None:
        """Register a plugin object (module or instance) under ``name`` and validate it."""
        if inspect.isclass(plugin):
            raise PluginError(
                name,
                distribution,
                f"{plugin.__qualname__} is a class; point the entry point at a module or an "
                "instance (pluggy registers the object as it is)",
            )
        if name in self._dist or self.pm.has_plugin(name):
            raise PluginError(name, distribution, "a plugin with this name is already loaded")
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            if self.pm.has_plugin(name):
                self.pm.unregister(name=name)
            raise PluginError(name, distribution, _validation_message(exc)) from exc
        except Exception as exc:
            raise PluginError(name, distribution, f"could not be registered: {exc}") from exc
        self._dist[name] = (distribution, version, source)

    def collect_components(self) -> None:
        """Call every registration hook once per plugin, attributing each name to its plugin."""
        self.registry = ComponentRegistry(self.registry.kinds)
        for hook_name, kind in REGISTRATION_HOOKS.items():
            caller = getattr(self.pm.hook, hook_name)
            # pluggy calls the last registered first; keep load order so errors name the newcomer
            for impl in reversed(caller.get_hookimpls()):
                dist = self.distribution(impl.plugin_name)
                registrar = Registrar(self.registry, kind, impl.plugin_name, dist)
                kwargs = {"registry": registrar}
                try:
                    impl.function(**{k: kwargs[k] for k in impl.argnames})
                except PluginError:
                    raise
                except Exception as exc:
                    raise PluginError(
                        impl.plugin_name, dist, f"{hook_name} raised {type(exc).__name__}: {exc}"
                    ) from exc

    def describe(self) -> list[PluginInfo]:
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            dist, version, source = self._dist.get(name, (None, None, "python"))
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or ())
            infos.append(
                PluginInfo(
                    name, dist, version, tuple(hooks), self.registry.provided_by(name), source
                )
            )
        return sorted(infos, key=lambda i: i.name)


def _validation_message(exc: pluggy.PluginValidationError) -> str:
    text = str(exc)
    if "unknown hook" in text:
        # pluggy: "unknown hook 'astra_x' in plugin <module ...>"
        return text.split(" in plugin")[0] + " (no such hook in astra_core.hookspecs)"
    # pluggy's multi-line text starts "Plugin 'x' for hook 'y'"; the plugin is already named.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and lines[0].startswith("Plugin "):
        hook = lines[0].split("for hook", 1)[-1].strip()
        return f"hook {hook}: " + "; ".join(lines[1:])
    return " ".join(lines)


def _entry_point_dists() -> dict[str, tuple[str | None, str | None]]:
    found: dict[str, tuple[str | None, str | None]] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        found[ep.name] = (
            dist.metadata["Name"] if dist is not None else None,
            dist.version if dist is not None else None,
        )
    return found


def load_file_plugin(path: str | Path) -> tuple[str, Any]:
    """Import a one-file plugin; its plugin name is the file's stem."""
    path = Path(path)
    name = path.stem
    if not path.is_file():
        raise PluginError(name, None, f"plugin file {path} does not exist")
    module_name = f"astra_local_plugin_{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(name, None, f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise PluginError(
            name, None, f"importing {path} failed: {type(exc).__name__}: {exc}"
        ) from exc
    return name, module


def load_plugins(
    *,
    disable: Iterable[str] = (),
    files: Sequence[str | Path] = (),
    objects: Sequence[tuple[str, Any]] = (),
    entry_points: bool = True,
    environ: dict[str, str] | None = None,
) -> PluginSet:
    """Load every plugin and validate it.

    ``disable`` adds to ``ASTRA_DISABLE_PLUGINS``; ``files`` adds to ``ASTRA_PLUGINS`` (paths
    separated by ``os.pathsep``); ``objects`` are ``(name, plugin)`` pairs registered directly,
    which is how code that embeds ASTRA (and tests) add a plugin without packaging it.
    """
    env = os.environ if environ is None else environ
    blocked = set(disable) | set(split_names(env.get(ENV_DISABLE)))
    plugins = PluginSet()
    plugins.disabled = sorted(blocked)
    for name in blocked:
        plugins.pm.set_blocked(name)

    if entry_points:
        dists = _entry_point_dists()
        wanted = [n for n in dists if n not in blocked]

        def on_failure(_manager: Any, entrypoint: Any, exc: BaseException) -> None:
            dist = dists.get(entrypoint.name, (None, None))[0]
            raise PluginError(
                entrypoint.name,
                dist,
                f"failed to import {entrypoint.value}: {type(exc).__name__}: {exc}",
            ) from exc

        manager = NamedExtensionManager(
            ENTRY_POINT_GROUP,
            names=wanted,
            name_order=True,
            on_load_failure_callback=on_failure,
        )
        for ext in manager:
            dist, version = dists.get(ext.name, (None, None))
            plugins.register(
                ext.plugin, ext.name, distribution=dist, version=version, source="entry-point"
            )

    extra = [*split_names_paths(env.get(ENV_PLUGINS)), *[str(f) for f in files]]
    for path in extra:
        name, module = load_file_plugin(path)
        if name in blocked:
            continue
        plugins.register(module, name, distribution=None, version=None, source=str(path))

    for name, obj in objects:
        if name not in blocked:
            plugins.register(obj, name, source="python")

    plugins.collect_components()
    return plugins


def split_names_paths(value: str | None) -> list[str]:
    return [p for p in (value or "").split(os.pathsep) if p.strip()]
