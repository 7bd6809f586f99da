"""The core's public API: every public module of astra_core says what it exports (``__all__``),
exports only what it defines or re-exports on purpose, and docs/api.md lists exactly that."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import astra_core

ROOT = Path(__file__).resolve().parents[1]


def public_modules() -> list[str]:
    names = [
        m.name for m in pkgutil.iter_modules(astra_core.__path__) if not m.name.startswith("_")
    ]
    return ["astra_core", *(f"astra_core.{n}" for n in sorted(names))]


def test_every_public_module_has_an_all_of_names_it_holds() -> None:
    for name in public_modules():
        module = importlib.import_module(name)
        exported = getattr(module, "__all__", None)
        assert exported, f"{name} has no __all__: say what is public, or name the module _{name}"
        missing = [n for n in exported if not hasattr(module, n)]
        assert not missing, f"{name}.__all__ names what it does not hold: {missing}"
        assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"


def test_docs_api_lists_each_public_module_and_its_names() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    documented = re.findall(r"^## `(astra_core[\w.]*)`", text, flags=re.M)
    assert documented == public_modules(), "docs/api.md lists other modules than astra_core has"
    for name in documented:
        section = text.split(f"## `{name}`", 1)[1].split("\n## ", 1)[0]
        listed = re.findall(r"^\| `(\w+)` \|", section, flags=re.M)
        assert listed == list(importlib.import_module(name).__all__), f"docs/api.md: {name}"
