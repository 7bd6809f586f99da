"""Typed component options, validated from TOML tables.

A component declares its options as a frozen attrs class; every field has a type and (unless the
option is required) a default. ``structure_options`` turns a TOML table into an instance or raises
a ``ConfigError`` that carries the dotted key path. A field made with ``component("verifier")``
holds a nested component choice: a name, or a table with ``name`` and that component's options;
``option(help, default, validator)`` makes a plain one, with the validators ``at_least``,
``greater_than`` and ``within``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union

import attrs

from astra_core.errors import ConfigError
from astra_core.records import content_id

__all__ = [
    "ComponentSpec",
    "at_least",
    "component",
    "describe_options",
    "greater_than",
    "option",
    "option_names",
    "options_fingerprint",
    "options_to_dict",
    "structure_options",
    "within",
]

KIND_METADATA_KEY = "astra_kind"


@attrs.frozen
class ComponentSpec:
    """A component chosen in a config: its ``name`` and its ``options``.

    ``options`` is a plain mapping as read from the file until the spec is validated against the
    registry; then it is an instance of the component's options class (or ``None``).
    """

    name: str
    options: Any = attrs.Factory(dict)

    @classmethod
    def parse(cls, value: Any, *, key: str, file: str | None = None) -> ComponentSpec:
        if isinstance(value, ComponentSpec):
            return value
        if isinstance(value, str):
            return cls(name=value, options={})
        if isinstance(value, Mapping):
            table = dict(value)
            name = table.pop("name", None)
            if not isinstance(name, str):
                raise ConfigError(
                    'a component table needs a string "name" naming the component',
                    path=file,
                    key=key,
                )
            return cls(name=name, options=table)
        raise ConfigError(
            f"expected a component name or a table with a name, got {type(value).__name__}",
            path=file,
            key=key,
        )


def option(help: str, default: Any, validator: Any = None, **kwargs: Any) -> Any:
    """An options field with its default and the help text ``astra plugins --options`` shows;
    ``validator`` checks a value when the options are built (``at_least(1)``, ``within(0, 1)``,
    or any attrs validator), so a bad value is a ``ConfigError`` naming its key."""
    return attrs.field(default=default, validator=validator, metadata={"help": help}, **kwargs)


def at_least(minimum: float) -> Any:
    """A validator: the value is ``>= minimum`` (``None``, an option left unset, passes)."""

    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and value < minimum:
            raise ValueError(f"{attribute.name} must be >= {minimum}, got {value!r}")

    return check


def greater_than(bound: float) -> Any:
    """A validator: the value is ``> bound`` (``None`` passes)."""

    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and value <= bound:
            raise ValueError(f"{attribute.name} must be > {bound}, got {value!r}")

    return check


def within(low: float, high: float) -> Any:
    """A validator: ``low <= value <= high`` (``None`` passes)."""

    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not low <= value <= high:
            raise ValueError(f"{attribute.name} must be within [{low}, {high}], got {value!r}")

    return check


def component(kind: str, default: str | None = None, *, help: str = "", **kwargs: Any) -> Any:
    """An options field that holds a nested component of ``kind`` (e.g. ``"llm_backend"``)."""
    metadata = {KIND_METADATA_KEY: kind, "help": help}
    if default is None:
        return attrs.field(metadata=metadata, **kwargs)
    return attrs.field(default=ComponentSpec(default), metadata=metadata, **kwargs)


def option_names(cls: type) -> list[str]:
    """The option names of an options class, in declaration order."""
    return [f.name for f in attrs.fields(cls)]


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _check(value: Any, tp: Any, key: str, file: str | None) -> Any:
    """Check ``value`` against ``tp`` and return it converted (lists to tuples, ints to floats)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        errors = []
        for arm in args:
            if arm is type(None):
                continue
            try:
                return _check(value, arm, key, file)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"expected {_type_name(tp)}, got {value!r}", path=file, key=key)
    if origin is Literal:
        if value in args:
            return value
        choices = ", ".join(repr(a) for a in args)
        raise ConfigError(f"expected one of {choices}, got {value!r}", path=file, key=key)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin in (list, tuple) or tp in (list, tuple):
        if isinstance(value, (list, tuple)):
            item_tp = args[0] if args else Any
            items = [_check(v, item_tp, f"{key}[{i}]", file) for i, v in enumerate(value)]
            return tuple(items) if (origin or tp) is tuple else items
    elif origin is dict or tp is dict:
        if isinstance(value, Mapping):
            val_tp = args[1] if len(args) == 2 else Any
            return {str(k): _check(v, val_tp, f"{key}.{k}", file) for k, v in value.items()}
    elif attrs.has(tp):
        if isinstance(value, Mapping):
            return structure_options(tp, value, key=key, file=file)
    else:  # an unusual annotation: trust the component to check it
        return value
    raise ConfigError(
        f"expected {_type_name(tp)}, got {type(value).__name__} {value!r}", path=file, key=key
    )


def structure_options(
    cls: type,
    table: Mapping[str, Any] | None,
    *,
    key: str,
    file: str | None = None,
    resolve_component: typing.Callable[[str, ComponentSpec, str], ComponentSpec] | None = None,
) -> Any:
    """Build an instance of the attrs class ``cls`` from ``table``.

    ``resolve_component(kind, spec, key)`` validates nested component fields; without it they are
    only parsed.
    """
    table = dict(table or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in attrs.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        known = ", ".join(fields) or "(none)"
        raise ConfigError(
            f"unknown option {unknown[0]!r}; the options here are: {known}",
            path=file,
            key=f"{key}.{unknown[0]}" if key else unknown[0],
        )
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        sub = f"{key}.{name}" if key else name
        kind = field.metadata.get(KIND_METADATA_KEY)
        if name not in table:
            if field.default is attrs.NOTHING:
                raise ConfigError(f"missing required option {name!r}", path=file, key=key or None)
            if kind and resolve_component and isinstance(field.default, ComponentSpec):
                kwargs[name] = resolve_component(kind, field.default, sub)
            elif kind and resolve_component and isinstance(field.default, tuple):
                kwargs[name] = tuple(
                    resolve_component(kind, ComponentSpec.parse(v, key=sub, file=file), sub)
                    for v in field.default
                )
            continue
        value = table[name]
        if kind and isinstance(value, (list, tuple)):
            specs = [
                ComponentSpec.parse(v, key=f"{sub}[{i}]", file=file) for i, v in enumerate(value)
            ]
            kwargs[name] = tuple(
                resolve_component(kind, s, f"{sub}[{i}]") if resolve_component else s
                for i, s in enumerate(specs)
            )
        elif kind:
            spec = ComponentSpec.parse(value, key=sub, file=file)
            kwargs[name] = resolve_component(kind, spec, sub) if resolve_component else spec
        else:
            kwargs[name] = _check(value, hints.get(name, Any), sub, file)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # an attrs validator refused a value
        raise ConfigError(str(exc), path=file, key=key or None) from exc


def options_fingerprint(name: str, options: Any, leave_out: frozenset[str]) -> str:
    """A content id of ``name`` and ``options`` without the ``leave_out`` keys at any depth
    (operational options: workers, endpoints, timeouts), so that what a component makes keeps
    its id when only how it runs changes."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in leave_out}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return content_id(name, strip(options_to_dict(options)))


def options_to_dict(options: Any) -> dict[str, Any]:
    """Options back to plain data (for manifests and config hashes)."""
    if options is None:
        return {}
    if isinstance(options, ComponentSpec):
        return {"name": options.name, **options_to_dict(options.options)}
    if attrs.has(type(options)):
        out: dict[str, Any] = {}
        for f in attrs.fields(type(options)):
            value = getattr(options, f.name)
            if isinstance(value, ComponentSpec) or attrs.has(type(value)):
                out[f.name] = options_to_dict(value)
            elif isinstance(value, tuple):
                out[f.name] = [
                    options_to_dict(v) if isinstance(v, ComponentSpec) or attrs.has(type(v)) else v
                    for v in value
                ]
            else:
                out[f.name] = value
        return out
    return dict(options)


def describe_options(cls: type | None) -> list[dict[str, Any]]:
    """Name, type, default and help of each option (for ``astra plugins`` and the docs)."""
    if cls is None:
        return []
    hints = typing.get_type_hints(cls)
    rows = []
    for f in attrs.fields(cls):
        default: Any
        if f.default is attrs.NOTHING:
            default = "(required)"
        elif isinstance(f.default, attrs.Factory):  # type: ignore[arg-type]
            default = f.default.factory()
        elif isinstance(f.default, ComponentSpec):
            default = f.default.name
        else:
            default = f.default
        rows.append(
            {
                "name": f.name,
                "type": _type_name(hints.get(f.name, Any)),
                "default": default,
                "help": f.metadata.get("help", ""),
            }
        )
    return rows
