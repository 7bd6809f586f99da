"""The docs say what the code does: the hook reference matches hookspecs.py, and the documented
examples run."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

from astra_core import hookspecs

ROOT = Path(__file__).resolve().parent.parent


def spec_names() -> list[str]:
    return [
        n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("astra_")
    ]


def test_hook_reference_is_in_step_with_hookspecs():
    text = (ROOT / "docs" / "hooks.md").read_text()
    documented = re.findall(r"^### `(astra_\w+)`", text, flags=re.M)
    source_order = re.findall(r"^def (astra_\w+)\(", inspect.getsource(hookspecs), flags=re.M)
    assert documented == source_order, "docs/hooks.md lists hooks that differ from hookspecs.py"
    assert sorted(documented) == sorted(spec_names())
    for name in documented:
        fn = getattr(hookspecs, name)
        params = ", ".join(inspect.signature(fn).parameters)
        section = text.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
        assert f"def {name}(" in section and all(p in section for p in params.split(", ") if p)
        doc = " ".join(inspect.getdoc(fn).split())
        assert doc in " ".join(section.split()), f"docstring of {name} differs from docs/hooks.md"


def test_every_hook_has_a_docstring_saying_when_it_fires_or_what_it_returns():
    for name in spec_names():
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert len(doc) > 40, name
        assert any(w in doc.lower() for w in ("fired", "return", "register", "add")), name


def test_one_file_plugin_from_the_guide_works(tmp_path):
    """The first rung of docs/writing-plugins.md, copied out of the page and run."""
    text = (ROOT / "docs" / "writing-plugins.md").read_text()
    code = re.search(r"```python\n(# my_verifier.py\n.*?)```", text, flags=re.S)
    assert code, "the one-file plugin example is missing from docs/writing-plugins.md"
    plugin = tmp_path / "my_verifier.py"
    plugin.write_text(code.group(1))
    result = subprocess.run(
        [sys.executable, "-m", "astra_core.cli", "--plugin", str(plugin), "plugins", "--json"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert '"verifier": [\n        "any-call-correct"' in result.stdout.replace("\r", "")
