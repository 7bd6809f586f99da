"""Named components per kind, who registered them, and how to build them."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from astra_core.errors import ConfigError, PluginError, UnknownComponentError
from astra_core.options import ComponentSpec, structure_options

__all__ = [
    "ComponentBuilder",
    "ComponentInfo",
    "ComponentRegistry",
    "Factory",
    "Preflight",
    "Registrar",
]

Factory = Callable[[Any, "ComponentBuilder"], Any]
# ``check(options, base_dir)``: the ``astra_core.preflight.Problem`` s of one component with
# these options on this machine; ``base_dir`` is the config file's folder.
Preflight = Callable[[Any, Path], Iterable[Any]]

log = logging.getLogger("astra")


@attrs.frozen
class ComponentInfo:
    """A registered component: ``factory(options, builder)`` makes it; ``options`` is the attrs
    class of its options, or ``None`` when it takes none; ``preflight(options, base_dir)``, when
    given, lists what it lacks on this machine (``astra_core.preflight``)."""

    kind: str
    name: str
    factory: Factory
    options: type | None
    plugin: str
    distribution: str | None
    description: str = ""
    preflight: Preflight | None = None


class ComponentRegistry:
    """Every component all plugins registered, by kind then name. ``kinds`` maps each kind to
    the Protocol its components must satisfy (``astra_core.protocols.KIND_PROTOCOLS`` for a
    run; given, not imported, so the registry sits below the Protocols that name the stage
    context)."""

    def __init__(self, kinds: Mapping[str, type | None]) -> None:
        self.kinds: dict[str, type | None] = dict(kinds)
        self._by_kind: dict[str, dict[str, ComponentInfo]] = {k: {} for k in self.kinds}

    def add(self, info: ComponentInfo) -> None:
        if info.kind not in self._by_kind:
            raise PluginError(
                info.plugin,
                info.distribution,
                f"registers a component of unknown kind {info.kind!r}",
            )
        taken = self._by_kind[info.kind].get(info.name)
        if taken is not None:
            raise PluginError(
                info.plugin,
                info.distribution,
                f"registers {info.kind} {info.name!r}, a name already registered by plugin "
                f"{taken.plugin!r}"
                + (f" (distribution {taken.distribution})" if taken.distribution else ""),
            )
        self._by_kind[info.kind][info.name] = info

    def names(self, kind: str) -> list[str]:
        return sorted(self._by_kind.get(kind, {}))

    def get(
        self, kind: str, name: str, *, key: str | None = None, file: str | None = None
    ) -> ComponentInfo:
        try:
            return self._by_kind[kind][name]
        except KeyError:
            available = (
                ", ".join(self.names(kind)) or "none: is the plugin that provides it installed?"
            )
            raise UnknownComponentError(
                f"unknown {kind} {name!r}; available: {available}", path=file, key=key
            ) from None

    def all(self) -> list[ComponentInfo]:
        return [info for kind in self._by_kind.values() for info in kind.values()]

    def provided_by(self, plugin: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for info in self.all():
            if info.plugin == plugin:
                out.setdefault(info.kind, []).append(info.name)
        return {k: sorted(v) for k, v in out.items()}

    def resolve(
        self, kind: str, spec: ComponentSpec, *, key: str, file: str | None = None
    ) -> ComponentSpec:
        """Check a spec against the registry: the name exists and its options validate."""
        info = self.get(kind, spec.name, key=key, file=file)
        if info.options is None:
            if isinstance(spec.options, Mapping) and spec.options:
                raise ConfigError(
                    f"{kind} {spec.name!r} takes no options, got {', '.join(spec.options)}",
                    path=file,
                    key=key,
                )
            return ComponentSpec(spec.name, None)
        if attrs.has(type(spec.options)) and isinstance(spec.options, info.options):
            return spec
        options = structure_options(
            info.options,
            spec.options,
            key=key,
            file=file,
            resolve_component=lambda k, s, sub: self.resolve(k, s, key=sub, file=file),
        )
        return ComponentSpec(spec.name, options)


class Registrar:
    """What a registration hook receives: ``registry.add(...)`` on behalf of one plugin."""

    def __init__(
        self, registry: ComponentRegistry, kind: str, plugin: str, distribution: str | None
    ) -> None:
        self._registry = registry
        self.kind = kind
        self.plugin = plugin
        self.distribution = distribution

    def add(
        self,
        name: str,
        factory: Factory,
        *,
        options: type | None = None,
        description: str = "",
        preflight: Preflight | None = None,
    ) -> None:
        """Make ``factory`` selectable as ``name``. ``options`` is an attrs class (or None).
        ``preflight(options, base_dir)`` returns the ``Problem`` s this component would meet on
        this machine (a missing program, package or endpoint), asked before a run starts."""
        if not callable(factory):
            raise PluginError(
                self.plugin, self.distribution, f"factory for {name!r} is not callable"
            )
        if preflight is not None and not callable(preflight):
            raise PluginError(
                self.plugin, self.distribution, f"preflight of {name!r} is not callable"
            )
        if options is not None and not attrs.has(options):
            raise PluginError(
                self.plugin,
                self.distribution,
                f"options of {self.kind} {name!r} must be an attrs class, got {options!r}",
            )
        if not description and factory.__doc__:
            description = factory.__doc__.strip().splitlines()[0]
        self._registry.add(
            ComponentInfo(
                self.kind,
                name,
                factory,
                options,
                self.plugin,
                self.distribution,
                description,
                preflight,
            )
        )


class ComponentBuilder:
    """Builds components from specs. Factories receive it to build the components they use
    (e.g. a sampler building its ``llm_backend``), and read the run's ``seed`` and ``workdir``.

    The builder owns what it built: ``close()`` (or leaving a ``with`` block) calls ``close()``
    on every product that has one, newest first, so a sampler goes before the executor its factory
    built. A stage's builder is closed when the stage ends, failed or not.
    """

    def __init__(
        self,
        registry: ComponentRegistry,
        *,
        seed: int = 0,
        workdir: str | Path = ".",
        hook: Any = None,
        file: str | None = None,
    ) -> None:
        self.registry = registry
        self.seed = seed
        self.workdir = Path(workdir)
        self.hook = hook
        self.file = file
        self._owned: list[tuple[ComponentInfo, Any]] = []

    def rng(self, salt: str = "") -> random.Random:
        """A random generator seeded from the run seed and ``salt``: reproducible per use."""
        return random.Random(f"{self.seed}:{salt}")

    def build_step(self, kind: str, slot: str, owner_options: Any) -> Any:
        """The ``kind`` component (a ``trajectory_step``, an ``arena_step``) that the owner's
        option ``slot`` names, built with the owner's options of the same names as the step's
        (so a config sets them once, on the owner); an error unless it fills ``slot``."""
        name = getattr(owner_options, slot)
        try:
            info = self.registry.get(kind, name)
        except UnknownComponentError:
            known = ", ".join(self.registry.names(kind))
            raise ConfigError(
                f"{slot}: unknown choice {name!r}; available {kind} components: {known}"
            ) from None
        shared: dict[str, Any] = {}
        if info.options is not None:
            shared = {
                f.name: getattr(owner_options, f.name)
                for f in attrs.fields(info.options)
                if hasattr(owner_options, f.name)
            }
        step = self.build(kind, ComponentSpec(name, shared), key=slot)
        if step.step != slot:
            raise ConfigError(f"{slot}: {name!r} fills the {step.step} slot, not {slot}")
        return step

    def build(self, kind: str, spec: ComponentSpec | str, *, key: str | None = None) -> Any:
        if isinstance(spec, str):
            spec = ComponentSpec(spec)
        resolved = self.registry.resolve(kind, spec, key=key or kind, file=self.file)
        info = self.registry.get(kind, resolved.name)
        try:
            product = info.factory(resolved.options, self)
        except (ConfigError, PluginError):
            raise
        except Exception as exc:
            raise PluginError(
                info.plugin, info.distribution, f"building {kind} {info.name!r} failed: {exc}"
            ) from exc
        protocol = self.registry.kinds.get(kind)
        if protocol is not None and not isinstance(product, protocol):
            members = [m for m in vars(protocol) if not m.startswith("_")]
            missing = [m for m in members if not hasattr(product, m)]
            raise PluginError(
                info.plugin,
                info.distribution,
                f"{kind} {info.name!r} built a {type(product).__name__} that does not satisfy "
                f"{protocol.__name__}"
                + (f" (missing {', '.join(sorted(missing))})" if missing else ""),
            )
        if callable(getattr(product, "close", None)):
            self._owned.append((info, product))
        return product

    def close(self) -> None:
        """Close every product built so far, newest first. Best effort: a ``close()`` that
        raises is logged with its plugin and the rest are still closed."""
        owned, self._owned = self._owned, []
        for info, product in reversed(owned):
            try:
                product.close()
            except Exception as exc:
                log.warning(
                    "closing %s %r (plugin %s) failed: %s", info.kind, info.name, info.plugin, exc
                )

    def __enter__(self) -> ComponentBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
