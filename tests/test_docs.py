"""The docs say what the code does: the hook reference matches hookspecs.py, and the documented
examples run."""

from __future__ import annotations

import contextlib
import inspect
import io
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from astra_core import cli, hookspecs
from astra_core.config import parse_config
from astra_core.errors import ConfigError
from astra_core.options import ComponentSpec
from astra_core.pipeline import prepare
from astra_core.plugins import load_plugins
from astra_core.registry import ComponentBuilder

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
    assert '"verifier": [\n        "final-answer"' in result.stdout.replace("\r", "")


def test_the_guides_plugin_test_passes(tmp_path, monkeypatch):
    """The fifth rung (testing a plugin) run against the first rung's plugin: a verifier that
    reads the episode's final answer, which the verifier contract hands it."""
    text = (ROOT / "docs" / "writing-plugins.md").read_text()
    plugin = re.search(r"```python\n(# my_verifier.py\n.*?)```", text, flags=re.S)
    test = re.search(
        r"```python\n(from astra_core.plugins import load_plugins\n.*?)```", text, flags=re.S
    )
    assert plugin and test, "docs/writing-plugins.md lost its plugin or its test"
    (tmp_path / "my_verifier.py").write_text(plugin.group(1))
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict[str, object] = {}
    exec(compile(test.group(1), "writing-plugins.md", "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert tests, "the guide's test section defines no test"
    for run_test in tests:
        run_test()


# -- the README ---------------------------------------------------------------------------------


def readme_blocks(language: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_readme_gives_the_two_fresh_machine_commands_and_ci_runs_the_test_one():
    commands = [
        line.split("#")[0].strip() for b in readme_blocks("console") for line in b.splitlines()
    ]
    assert "bash scripts/quickstart.sh" in commands
    assert "bash scripts/test.sh" in commands
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "bash scripts/test.sh" in [line.strip() for line in ci]


def test_readme_links_every_docs_page_and_only_pages_that_exist():
    text = (ROOT / "README.md").read_text()
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)\)", text))
    pages = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert linked == pages


def test_readme_cli_lines_name_real_commands_and_flags():
    lines = [
        line.split("#")[0].split()
        for block in readme_blocks("console")
        for line in block.splitlines()
        if line.startswith("astra ")
    ]
    assert len(lines) >= 5
    helps: dict[tuple[str, ...], str] = {}  # in this process, once per command: ~2 s each apart
    for words in lines:
        command = []
        for word in words[1:]:
            if word.startswith("-") or "/" in word or "." in word:
                break
            command.append(word)
        if tuple(command) not in helps:
            out = io.StringIO()
            with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
                cli.main([*command, "--help"])
            assert done.value.code == 0, words
            helps[tuple(command)] = out.getvalue()
        for flag in (w for w in words if w.startswith("--")):
            assert flag in helps[tuple(command)], (words, flag)


def test_readme_run_config_is_valid():
    (block,) = readme_blocks("toml")
    prepare(parse_config(tomllib.loads(block)))


def test_configuration_example_from_the_guide_validates_its_options():
    """The third rung of docs/writing-plugins.md: its options class and registration, run."""
    text = (ROOT / "docs" / "writing-plugins.md").read_text()
    section = text.split("## 3. Configuration", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert code, "the configuration example is missing from docs/writing-plugins.md"
    module = types.ModuleType("thresholded")

    class Thresholded:  # the guide leaves the verifier itself out
        def __init__(self, threshold: float, sandbox: object) -> None:
            self.threshold = threshold

        def score(self, arena: object, episode: object) -> None:
            return None

    module.Thresholded = Thresholded  # type: ignore[attr-defined]
    exec(compile(code.group(1), "writing-plugins.md", "exec"), module.__dict__)
    builder = ComponentBuilder(load_plugins(objects=[("thresholded", module)]).registry)
    assert (
        builder.build("verifier", ComponentSpec("thresholded", {"threshold": 0.8})).threshold == 0.8
    )
    with pytest.raises(ConfigError, match=r"threshold must be within \[0, 1\], got 1.5"):
        builder.build("verifier", ComponentSpec("thresholded", {"threshold": 1.5}))
