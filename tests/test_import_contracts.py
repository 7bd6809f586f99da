"""Plugin boundaries, kept by import-linter: the core imports no plugin, no plugin imports
another, plugins import only the core's public modules, and no package has an import circle.
The contracts live in pyproject.toml ([tool.importlinter]); these tests run them and check that
they cover every installed plugin and ignore no import."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def importlinter_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "importlinter"
    ]


def contract(kind: str) -> dict:
    (found,) = [c for c in importlinter_config()["contracts"] if c["type"] == kind]
    return found


def test_the_import_contracts_hold() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"lint-imports:\n{done.stdout}{done.stderr}"
    count = len(importlinter_config()["contracts"])
    assert f"Contracts: {count} kept, 0 broken." in done.stdout, done.stdout


def test_the_contracts_cover_every_installed_plugin_and_ignore_nothing() -> None:
    packages = {
        ep.value.split(":")[0].split(".")[0]
        for ep in importlib.metadata.entry_points(group="astra.plugins")
    }
    assert set(contract("independence")["modules"]) == packages
    assert set(contract("forbidden")["forbidden_modules"]) == packages
    assert set(contract("acyclic_siblings")["ancestors"]) == packages | {"astra_core"}
    assert set(importlinter_config()["root_packages"]) == packages | {"astra_core"}
    assert contract("private_modules")["packages_with_private_modules"] == ["astra_core"]
    for each in importlinter_config()["contracts"]:
        assert not each.get("ignore_imports"), f"contract {each['name']!r} ignores imports"


def test_a_plugin_importing_another_breaks_a_contract(tmp_path: Path) -> None:
    """The independence contract can fail: a config naming two packages where one imports the
    other is reported broken."""
    for name, body in (("pkg_a", "import pkg_b\n"), ("pkg_b", "")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(body)
    (tmp_path / ".importlinter").write_text(
        "[importlinter]\nroot_packages =\n    pkg_a\n    pkg_b\n\n"
        "[importlinter:contract:one]\nname = independent\ntype = independence\n"
        "modules =\n    pkg_a\n    pkg_b\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode != 0 and "BROKEN" in done.stdout, done.stdout
