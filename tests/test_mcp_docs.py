"""docs/mcp.md says what the code does: its config validates against the registered
components, and its option tables list every option of the MCP components."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import attrs
from astra_mcp.options import (
    McpExecutorOptions,
    McpServerConfig,
    McpSourceOptions,
)
from astra_trajectories.probe_options import McpProbeOptions

from astra_core.config import parse_config
from astra_core.plugins import load_plugins

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DOC = Path(__file__).resolve().parent.parent / "docs" / "mcp.md"


def toml_blocks() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_documented_config_validates():
    registry = load_plugins().registry
    config = parse_config(tomllib.loads(toml_blocks()[0]), path=str(DOC)).resolve(registry)
    section = config.stages["synth-trajectories"]
    assert section.source.name == "mcp" and section.sampler.name == "mcp-probe"
    configs = section.source.options.server_configs()
    assert [c.name for c in configs] == ["time", "git", "sqlite", "github"]
    assert configs[3].env == {"GITHUB_PERSONAL_ACCESS_TOKEN": "${GITHUB_TOKEN}"}
    assert configs[2].scenarios[0]["read_query.query"].startswith("SELECT")


def test_the_documented_http_config_validates():
    registry = load_plugins().registry
    (block,) = [b for b in toml_blocks() if "url = " in b]
    config = parse_config(tomllib.loads(block), path=str(DOC)).resolve(registry)
    source = config.stages["synth-trajectories"].source
    assert source.name == "mcp" and source.options.connect_attempts == 3
    crm, legacy = source.options.server_configs()
    assert crm.url is not None and crm.transport == "streamable-http"
    assert crm.headers["Authorization"] == "Bearer ${CRM_MCP_TOKEN}"
    assert legacy.transport == "sse" and legacy.headers == {"X-Api-Key": "${SEARCH_KEY}"}


def test_the_executor_snippet_validates():
    registry = load_plugins().registry
    text = "\n".join(
        [
            "[synth-trajectories.source]",
            'name = "mcp-stdio"',
            'servers = [{name = "a", command = ["a"]}]',
            "[synth-trajectories.sampler]",
            'name = "mcp-probe"',
            next(b for b in toml_blocks() if "sampler.executor" in b),
        ]
    )
    config = parse_config(tomllib.loads(text)).resolve(registry)
    executor = config.stages["synth-trajectories"].sampler.options.executor
    assert executor.name == "mcp" and executor.options.call_timeout_s == 30


def test_every_option_is_documented():
    text = DOC.read_text(encoding="utf-8")
    for cls in (McpServerConfig, McpSourceOptions, McpExecutorOptions, McpProbeOptions):
        for field in attrs.fields(cls):
            assert f"`{field.name}`" in text, f"{cls.__name__}.{field.name} is not in docs/mcp.md"
