"""Components are owned by the builder that built them and closed when their stage ends: newest
first, whether the stage finished or failed, and a ``close()`` that raises does not keep the
others open. (A live MCP server stopped at the end of its stage: tests/test_mcp_probe.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import astra_core
from astra_core import hookimpl
from astra_core.config import parse_config
from astra_core.plugins import load_plugins
from astra_core.records import Arena, Reward
from astra_core.registry import ComponentBuilder


class Events:
    """What the test plugin's components report, in order."""

    def __init__(self) -> None:
        self.lines: list[str] = []


class Verifier:
    def __init__(self, events: Events, name: str, *, fail_close: bool = False) -> None:
        self.events, self.name, self.fail_close = events, name, fail_close

    def score(self, arena: Arena, episode: Any) -> Reward:
        return Reward(value=0.0)

    def close(self) -> None:
        self.events.lines.append(f"close {self.name}")
        if self.fail_close:
            raise OSError("disk gone")


class Generator:
    """Builds a verifier through the builder (as a sampler builds its executor)."""

    def __init__(self, events: Events, builder: ComponentBuilder, *, fail: bool) -> None:
        self.events = events
        self.verifier = builder.build("verifier", "recording")
        self.fail = fail

    def generate(self, ctx: Any) -> Iterator[Arena]:
        self.events.lines.append("generate")
        if self.fail:
            raise RuntimeError("generator broke")
        yield from ()

    def close(self) -> None:
        self.events.lines.append("close generator")


def plugin(events: Events, *, fail: bool = False) -> object:
    class Plugin:
        @hookimpl
        def astra_register_verifiers(self, registry: Any) -> None:
            registry.add("recording", lambda o, b: Verifier(events, "verifier"))
            registry.add("failing-close", lambda o, b: Verifier(events, "failing", fail_close=True))
            registry.add("no-close", lambda o, b: NoClose())

        @hookimpl
        def astra_register_environment_generators(self, registry: Any) -> None:
            registry.add("recording", lambda o, b: Generator(events, b, fail=fail))

    return Plugin()


class NoClose:
    def score(self, arena: Arena, episode: Any) -> Reward:
        return Reward(value=0.0)


def test_builder_closes_newest_first_and_goes_on_past_a_failing_close(caplog):
    events = Events()
    plugins = load_plugins(objects=[("lifecycle", plugin(events))])
    with ComponentBuilder(plugins.registry) as builder:
        builder.build("verifier", "recording")
        builder.build("verifier", "failing-close")
        builder.build("verifier", "no-close")
        builder.build("environment_generator", "recording")
        assert events.lines == []
    assert events.lines == [
        "close generator",
        "close verifier",  # the one the generator's factory built
        "close failing",
        "close verifier",
    ]
    assert "closing verifier 'failing-close' (plugin lifecycle) failed: disk gone" in caplog.text
    builder.close()  # owns nothing any more
    assert len(events.lines) == 4


@pytest.mark.parametrize("fail", [False, True])
def test_a_stage_closes_its_components_when_it_ends(tmp_path: Path, fail: bool):
    events = Events()
    plugins = load_plugins(objects=[("lifecycle", plugin(events, fail=fail))])
    config = parse_config(
        {"run": {"name": "lifecycle"}, "synth-arenas": {"generator": {"name": "recording"}}}
    )
    if fail:
        with pytest.raises(RuntimeError, match="generator broke"):
            astra_core.run(config, tmp_path, plugins=plugins, quiet=True)
    else:
        astra_core.run(config, tmp_path, plugins=plugins, quiet=True)
    assert events.lines == ["generate", "close generator", "close verifier"]
    manifest = json.loads((tmp_path / "synth-arenas" / "manifest.json").read_text())
    assert manifest["status"] == ("failed" if fail else "complete")
