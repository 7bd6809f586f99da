"""Safe by default: LLM-written tool code runs only in an isolating sandbox unless a config says so.

The arenas here are marked LLM-written (``metadata.tool_code_origin = "llm"``); their tool writes a
marker file on the host when it loads, so a test sees whether any of its code ran and whether the
sandbox let it reach the host's files. The sandboxes are the real ones (bubblewrap, subprocess).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
from astra_sandbox import launch
from conftest import astra

from astra_core.arena_verification import verify_arena
from astra_core.context import StageContext
from astra_core.errors import UnisolatedSandboxRefused
from astra_core.options import KIND_METADATA_KEY, ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.records import Arena, SubQuestion, ToolCall
from astra_core.registry import ComponentBuilder
from astra_core.sandbox_policy import LLM_WRITTEN, TOOL_CODE_ORIGIN
from astra_core.store import RecordStore

BWRAP_PROBLEM = launch.bubblewrap_problem()
needs_bwrap = pytest.mark.skipif(
    BWRAP_PROBLEM is not None, reason=f"bubblewrap unavailable: {BWRAP_PROBLEM}"
)


def llm_arena(marker: Path, *, origin: str = LLM_WRITTEN) -> Arena:
    code = f'''
try:  # a side effect on the host, to see whether the code ran and what it could reach
    open({str(marker)!r}, "w").write("ran")
except OSError:
    pass


def capital(country: str) -> str:
    """The capital of a country."""
    return {{"France": "Paris"}}.get(country, "unknown")
'''
    tool = {
        "type": "function",
        "function": {
            "name": "capital",
            "description": "The capital of a country.",
            "parameters": {
                "type": "object",
                "properties": {"country": {"type": "string"}},
                "required": ["country"],
            },
        },
    }
    call = ToolCall("capital", {"country": "France"})
    return Arena(
        question="What is the capital of France?",
        answer="Paris",
        topology="single",
        subquestions=(SubQuestion("q1", "Capital of France?", "Paris", (), True, "capital", call),),
        tools=(tool,),
        tool_code={"capital": code},
        metadata={TOOL_CODE_ORIGIN: origin},
    )


@pytest.fixture(scope="module")
def plugins():
    return load_plugins()


@pytest.fixture(scope="module")
def builder(plugins) -> ComponentBuilder:
    return ComponentBuilder(plugins.registry)


def play(plugins, arena: Arena, sandbox) -> str:
    """One episode through the runtime a rollout gets (the ``astra_arena_runtime`` hook)."""
    runtime = plugins.hook.astra_arena_runtime(arena=arena, sandbox=sandbox)
    with runtime:
        result = runtime.step(ToolCall("capital", {"country": "France"}))
    assert not result.error, result.output
    return result.output


def test_subprocess_refuses_llm_written_code_before_any_of_it_runs(plugins, builder, tmp_path):
    marker = tmp_path / "marker"
    arena = llm_arena(marker)
    sandbox = builder.build("sandbox", "subprocess")
    assert sandbox.isolated is False and sandbox.allow_unisolated is False
    with pytest.raises(UnisolatedSandboxRefused, match=f"arena {arena.id}") as err:
        play(plugins, arena, sandbox)
    assert "allow_unisolated" in str(err.value) and "'subprocess'" in str(err.value)
    with pytest.raises(UnisolatedSandboxRefused, match=f"arena {arena.id}"):
        verify_arena(arena, sandbox)
    assert not marker.exists()  # refused before any of the arena's code ran


def test_allow_unisolated_runs_it_and_the_host_is_reachable(plugins, builder, tmp_path):
    marker = tmp_path / "marker"
    arena = llm_arena(marker)
    sandbox = builder.build("sandbox", ComponentSpec("subprocess", {"allow_unisolated": True}))
    assert sandbox.allow_unisolated is True
    assert play(plugins, arena, sandbox) == "Paris"
    assert marker.read_text() == "ran"  # what allowing it means: the code reached the host
    marker.unlink()
    (check,) = verify_arena(arena, sandbox)
    assert check.passed, check.reason


def test_code_of_unknown_origin_still_runs_unisolated(plugins, builder, tmp_path):
    # Only arenas marked LLM-written are refused (the bundled offline-world tools are templates).
    arena = llm_arena(tmp_path / "marker", origin="template")
    assert play(plugins, arena, builder.build("sandbox", "subprocess")) == "Paris"


@needs_bwrap
def test_bubblewrap_runs_llm_written_code_isolated(plugins, builder, tmp_path):
    marker = tmp_path / "marker"
    arena = llm_arena(marker)
    sandbox = builder.build("sandbox", "bubblewrap")
    assert sandbox.isolated is True
    assert play(plugins, arena, sandbox) == "Paris"
    (check,) = verify_arena(arena, sandbox)
    assert check.passed, check.reason
    assert not marker.exists()  # it ran, and could not write to the host


@pytest.mark.parametrize(
    ("kind", "name", "split"), [("trainer", "rl", "train"), ("evaluator", "arena-eval", "holdout")]
)
def test_train_rl_and_eval_refuse_before_loading_a_model(plugins, tmp_path, kind, name, split):
    marker = tmp_path / "marker"
    arena = attrs.evolve(llm_arena(marker), split=split)
    store = RecordStore(tmp_path / "synth-arenas", Arena).open()
    store.write(arena)
    store.close()
    builder = ComponentBuilder(plugins.registry, hook=plugins.hook, workdir=tmp_path)
    options = {"sandbox": "subprocess"}
    options["model" if kind == "trainer" else "models"] = (
        str(tmp_path / "no-model") if kind == "trainer" else [str(tmp_path / "no-model")]
    )
    stage = builder.build(kind, ComponentSpec(name, options))
    ctx = StageContext("train-rl", run_dir=tmp_path, builder=builder, quiet=True)
    # the missing model would fail next: the refusal comes first, naming the arena
    with pytest.raises(UnisolatedSandboxRefused, match=f"arena {arena.id}"):
        stage.run(ctx)
    assert not marker.exists()


def test_allow_unisolated_is_an_option_of_the_unisolated_sandbox_only(builder):
    with pytest.raises(Exception, match="allow_unisolated"):
        builder.build("sandbox", ComponentSpec("bubblewrap", {"allow_unisolated": True}))


def _sandbox_defaults(cls: type | None, where: str) -> dict[str, str]:
    """Every sandbox option of an options class (nested option classes too) -> its default."""
    found: dict[str, str] = {}
    if cls is None or not attrs.has(cls):
        return found
    for f in attrs.fields(cls):
        key = f"{where}.{f.name}"
        if f.metadata.get(KIND_METADATA_KEY) == "sandbox":
            found[key] = f.default.name if isinstance(f.default, ComponentSpec) else repr(f.default)
        elif isinstance(f.default, attrs.Factory) and attrs.has(f.default.factory):  # type: ignore[arg-type]
            found |= _sandbox_defaults(f.default.factory, key)  # type: ignore[arg-type]
    return found


def test_every_component_that_runs_arena_code_defaults_to_bubblewrap(plugins):
    found: dict[str, str] = {}
    for info in plugins.registry.all():
        found |= _sandbox_defaults(info.options, f"{info.kind} {info.name}")
    # the components that run arena code: generators, verifiers, trainers, the evaluator
    for expected in (
        "environment_generator offline-world.sandbox",
        "environment_generator bfcl-multi-turn.sandbox",
        "verifier bfcl-multi-turn.sandbox",
        "trainer sft.sandbox",
        "trainer rl.sandbox",
        "evaluator arena-eval.sandbox",
    ):
        assert expected in found, sorted(found)
    assert set(found.values()) == {"bubblewrap"}, found


def test_plugins_options_lists_bubblewrap_as_every_sandbox_default():
    result = astra("plugins", "--options")
    assert result.returncode == 0, result.stderr
    defaults = re.findall(r"^  sandbox: \S+ = '([^']*)'", result.stdout, flags=re.MULTILINE)
    assert len(defaults) >= 6 and set(defaults) == {"bubblewrap"}, defaults
    assert "allow_unisolated: bool = False" in result.stdout


def test_the_unisolated_warning_prints_once_per_process():
    program = (
        "from astra_core.plugins import load_plugins\n"
        "from astra_core.registry import ComponentBuilder\n"
        "from astra_core.options import ComponentSpec\n"
        "b = ComponentBuilder(load_plugins().registry)\n"
        "b.build('sandbox', 'subprocess')\n"
        "b.build('sandbox', ComponentSpec('subprocess', {'allow_unisolated': True}))\n"
        "print(b.build('sandbox', 'subprocess').run('print(6 * 7)').stdout, end='')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "42\n"
    assert done.stderr.count("does NOT isolate") == 1, done.stderr
