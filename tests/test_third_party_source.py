"""A third party can feed the bundled ``offline-chain-walk`` sampler and judge final answers: the
one-file plugin and the config of docs/writing-plugins.md ("A tool-graph source for the bundled
sampler"), run with ``astra run``. The plugin imports nothing from ASTRA but ``astra_core``."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import attrs
import pytest
from astra_trajectories.chain_verification import ArgumentDependencyVerifier, ChainRejected
from astra_trajectories.options import ArgumentDependencyOptions
from conftest import PLUGIN_FILES, astra

from astra_core.plugins import load_file_plugin
from astra_core.records import ToolGraph, Trajectory

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = PLUGIN_FILES / "notes_source.py"
SECTION = "## 6. A tool-graph source for the bundled sampler"


def guide_blocks() -> tuple[str, str]:
    text = (ROOT / "docs" / "writing-plugins.md").read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1]
    code = re.search(r"```python\n(# notes_source.py\n.*?)```", section, flags=re.S)
    config = re.search(r"```toml\n(# notes.toml\n.*?)```", section, flags=re.S)
    assert code and config, "the walkthrough is missing from docs/writing-plugins.md"
    return code.group(1), config.group(1)


def test_the_guide_shows_the_plugin_this_test_runs():
    code, _ = guide_blocks()
    assert code == PLUGIN.read_text(encoding="utf-8")


def test_the_plugin_imports_only_the_core():
    tree = ast.parse(PLUGIN.read_text(encoding="utf-8"))
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    astra_modules = {m for m in modules if m and m.startswith("astra")}
    assert astra_modules and all(m.split(".")[0] == "astra_core" for m in astra_modules)


def test_astra_run_turns_its_graphs_into_trajectories(tmp_path: Path):
    _, config = guide_blocks()
    (tmp_path / "notes_source.py").write_text(PLUGIN.read_text(encoding="utf-8"))
    (tmp_path / "notes.toml").write_text(config)
    done = astra("run", str(tmp_path / "notes.toml"), "--out", str(tmp_path / "runs"), "-q")
    assert done.returncode == 0, done.stderr
    stage = tmp_path / "runs" / "synth-trajectories"
    rows = (stage / "data-00000.jsonl").read_text().splitlines()
    trajectories = [Trajectory.from_json(line) for line in rows]
    assert len(trajectories) == 4 and all(t.status == "ok" for t in trajectories)
    checked = 0
    for trajectory in trajectories:
        calls = trajectory.tool_calls
        outputs = [json.loads(m["content"]) for m in trajectory.messages if m["role"] == "tool"]
        names = [c["function"]["name"] for c in calls]
        arguments = [json.loads(c["function"]["arguments"]) for c in calls]
        # every hand-off is the one the edge declares
        for i, name in enumerate(names):
            if name == "read_note" and i > 0:
                assert arguments[i]["note_ref"] == outputs[i - 1]["results"][0]["uid"]
                checked += 1
            if name == "message_author" and i > 0:
                assert arguments[i]["handle"] == outputs[i - 1]["author"]
                checked += 1
    assert checked >= 4


def test_its_verifier_judges_the_final_answer_from_the_whole_episode():
    from astra_core.plugins import load_plugins
    from astra_core.records import Arena, Episode, SubQuestion, ToolCallResult
    from astra_core.registry import ComponentBuilder

    plugins = load_plugins(files=[PLUGIN])
    verifier = ComponentBuilder(plugins.registry).build("verifier", "notes-final-answer")
    arena = Arena(
        question="Who wrote the note on tides?",
        answer="Ada",
        topology="single",
        subquestions=(SubQuestion("q1", "Who wrote it?", "Ada"),),
        tools=(),
        tool_code={},
    )
    found = [ToolCallResult("read_note", {"note_ref": "n1"}, '{"author": "Ada"}')]

    def said(text: str) -> Episode:
        answer = {"role": "assistant", "content": text}
        return Episode.of_calls(arena, found, messages=({"role": "user", "content": "?"}, answer))

    assert verifier.score(arena, said("It was ada.")).success
    # the right call alone is not the right answer
    wrong = verifier.score(arena, said("Nobody knows."))
    assert not wrong.success and wrong.value == 0.0 and wrong.calls == 1


def test_without_the_declared_handoffs_the_chain_is_rejected_with_a_reason():
    # ``uid`` never matches ``note_ref`` by name: the chain stands on the edge's hand-off alone
    _, module = load_file_plugin(PLUGIN)
    graph = ToolGraph(server=module.SERVER, edges=module.EDGES)
    verifier = ArgumentDependencyVerifier(ArgumentDependencyOptions(), None)  # type: ignore[arg-type]
    chain = ("find_notes", "read_note", "message_author")
    plan = verifier.verify(graph.server, chain, graph.edges)
    assert plan.describe()[1] == (
        "read_note.note_ref <- step 1 find_notes.results[].uid (hand-off given by the graph)"
    )
    bare = tuple(attrs.evolve(e, handoffs=()) for e in graph.edges)
    with pytest.raises(ChainRejected, match=r"read_note\.note_ref"):
        verifier.verify(graph.server, chain, bare)
