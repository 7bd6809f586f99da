"""docs/arenas.md: the one-file generator and verifier plugin, copied out of the page, works."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from astra_core.context import StageContext
from astra_core.plugins import load_plugins
from astra_core.records import Arena, Episode, ToolCallResult
from astra_core.registry import ComponentBuilder
from astra_core.store import RecordStore

ROOT = Path(__file__).resolve().parent.parent


def test_the_documented_plugin_generates_and_verifies(tmp_path: Path):
    text = (ROOT / "docs" / "arenas.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(# my_arenas.py\n.*?)```", text, flags=re.S)
    assert code, "the one-file plugin example is missing from docs/arenas.md"
    plugin = tmp_path / "my_arenas.py"
    plugin.write_text(code.group(1), encoding="utf-8")
    plugins = load_plugins(files=[plugin])
    builder = ComponentBuilder(plugins.registry)
    store = RecordStore(tmp_path / "run" / "synth-arenas", Arena).open()
    ctx = StageContext(
        "synth-arenas", run_dir=tmp_path / "run", builder=builder, store=store, quiet=True
    )
    arenas = list(builder.build("environment_generator", "capitals-quiz").generate(ctx))
    assert [a.answer for a in arenas] == ["Vell", "Brio", "Tesk"]
    verifier = builder.build("verifier", "all-or-nothing")
    hit = ToolCallResult("capital_of", {"country": "Morland"}, "Vell")
    assert verifier.score(arenas[0], Episode.of_calls(arenas[0], [hit])).value == 1.0
    assert verifier.score(arenas[0], Episode.of_calls(arenas[0], [])).value == 0.0
    # its arenas name their own verifier; any other arena is left to other plugins
    assert plugins.hook.astra_arena_verifier(arena=arenas[0]) == "all-or-nothing"
    other = attrs.evolve(arenas[0], metadata={})
    assert plugins.hook.astra_arena_verifier(arena=other) == "subtask-f1"
