"""The bfcl plugin without bfcl-eval: it still loads, and building its components says how to
install the extra. Runs whether or not bfcl-eval is installed (it is hidden in a fresh
interpreter)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
sys.modules["bfcl_eval"] = None  # what a missing package looks like to import
from astra_core.errors import AstraError
from astra_core.plugins import load_plugins
from astra_core.registry import ComponentBuilder

registry = load_plugins().registry
assert "bfcl-multi-turn" in registry.names("environment_generator")
assert "bfcl-multi-turn" in registry.names("verifier")
builder = ComponentBuilder(registry)
for kind in ("environment_generator", "verifier"):
    try:
        builder.build(kind, "bfcl-multi-turn")
    except AstraError as exc:
        print(kind, "->", exc)
    else:
        raise SystemExit(kind + " built without bfcl-eval")
"""


def test_missing_bfcl_eval_gives_an_install_hint():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert "pip install --no-deps bfcl-eval mpmath" in line
        assert "bfcl" in line
