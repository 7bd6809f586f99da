"""Preflight: what the components a config names need of this machine is checked by
``astra config check`` and before the first stage of ``astra run``, one line per problem with
its fix. The needs are made missing for real: a PATH without bwrap or the MCP server's program,
a package Python cannot import (``sys.modules[name] = None``, which is how Python itself records
a package that must not be imported), an LLM server that does not listen."""

from __future__ import annotations

import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from astra_llm.loopback_server import LoopbackServer, Reply

from astra_core.config import load_config, parse_config
from astra_core.errors import PluginError, PreflightFailed
from astra_core.pipeline import prepare, run
from astra_core.plugins import load_plugins
from astra_core.preflight import Problem, preflight_problems, problem_line

QUICKSTART = ROOT / "examples" / "quickstart.toml"

MISSING = """
[run]
name = "preflight"

[synth-trajectories.source]
name = "mcp-stdio"
servers = [{ name = "ghost", command = ["astra-no-such-mcp-server", "--stdio"] }]

[synth-trajectories.sampler]
name = "mcp-probe"

[synth-arenas.generator]
name = "offline-world"
count = 5
sandbox = "bubblewrap"

[train-sft.trainer]
name = "sft"
model = "tiny"
lora = { r = 4 }
"""


def astra_without(
    hidden: list[str], *args: str, path: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The real ``astra`` command, in a fresh interpreter where the packages ``hidden`` cannot
    be imported and PATH is ``path``."""
    boot = (
        "import sys\n"
        f"for name in {hidden!r}: sys.modules[name] = None\n"
        "from astra_core.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = {**os.environ, "PATH": path}
    env.pop("ASTRA_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-c", boot, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def problem_lines(stderr: str) -> list[str]:
    lines = stderr.strip().splitlines()
    assert lines[0].startswith("astra: error: "), stderr
    assert "to fix before the run can start (nothing was run)" in lines[0], stderr
    return [line.strip() for line in lines[1:]]


def test_config_check_names_each_missing_program_and_package_with_its_fix(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(MISSING, encoding="utf-8")
    empty = tmp_path / "bin"
    empty.mkdir()  # a PATH with neither bwrap nor the MCP server's program
    result = astra_without(["peft"], "config", "check", str(config), path=str(empty))
    assert result.returncode == 2, result.stderr
    assert "3 problems" in result.stderr
    lines = problem_lines(result.stderr)
    assert len(lines) == 3, result.stderr
    mcp, bwrap, peft = lines
    assert mcp.startswith("[synth-trajectories.source] tool_graph_source 'mcp-stdio' ")
    assert "MCP server 'ghost'" in mcp and "'astra-no-such-mcp-server' is not on PATH" in mcp
    assert "; fix: install 'astra-no-such-mcp-server'" in mcp
    # one line for the one missing program, naming every sandbox that needs it (train-sft's is
    # bubblewrap by default)
    assert bwrap.startswith(
        "[synth-arenas.generator.sandbox, train-sft.trainer.sandbox] sandbox 'bubblewrap' "
    )
    assert "needs the bwrap program" in bwrap and "; fix: " in bwrap
    assert peft == (
        "[train-sft.trainer] trainer 'sft' needs the Python package peft (lora.r = 4), which is "
        "not installed; fix: pip install 'astra-agents[peft]'"
    )
    assert result.stdout == ""


def test_with_everything_there_the_same_config_passes(tmp_path):
    """The problems above are this machine's, not the config's: with bwrap on PATH, peft
    importable and the server's program a real one, the check passes."""
    if not any((Path(d) / "bwrap").exists() for d in os.environ["PATH"].split(os.pathsep)):
        pytest.skip("bwrap is not installed here")
    config = tmp_path / "run.toml"
    config.write_text(
        MISSING.replace('"astra-no-such-mcp-server", "--stdio"', '"python3", "-c", "pass"'),
        encoding="utf-8",
    )
    result = astra_without([], "config", "check", str(config), path=os.environ["PATH"])
    assert result.returncode == 0, result.stderr
    assert "ok (synth-trajectories, synth-arenas, train-sft)" in result.stdout


def test_astra_run_stops_before_the_first_stage_and_writes_nothing(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(MISSING, encoding="utf-8")
    empty = tmp_path / "bin"
    empty.mkdir()
    out = tmp_path / "out"
    result = astra_without(["peft"], "run", str(config), "--out", str(out), path=str(empty))
    assert result.returncode == 2, result.stderr
    assert len(problem_lines(result.stderr)) == 3
    assert not out.exists()  # no stage directory, manifest or report
    # the same from Python, for the stages asked for: synth-arenas alone meets only bwrap
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", str(empty))
        with pytest.raises(PreflightFailed) as caught:
            run(load_config(config), out, stages=["synth-arenas"], quiet=True)
    assert len(caught.value.lines) == 1 and "bwrap" in caught.value.lines[0]
    assert not out.exists()
    # --no-preflight skips the checks: the stage starts, and fails when it builds its sandbox
    skipped = astra_without(
        [], "synth", "arenas", str(config), "--out", str(out), "--no-preflight", path=str(empty)
    )
    assert skipped.returncode == 1
    assert "sandbox 'bubblewrap' needs the bwrap program" in skipped.stderr
    assert '"status": "failed"' in (out / "synth-arenas" / "manifest.json").read_text()


def test_one_problem_met_by_every_stage_is_one_line_naming_every_key(tmp_path, monkeypatch):
    """The quickstart's four sandboxes are all bubblewrap: one missing bwrap, one line."""
    monkeypatch.setenv("PATH", str(tmp_path))
    config, plugins = prepare(QUICKSTART)
    problems = [p for p in preflight_problems(config, plugins.registry) if p.severity == "error"]
    assert len(problems) == 1, [problem_line(p) for p in problems]
    assert problems[0].key == (
        "synth-arenas.generator.sandbox, train-sft.trainer.sandbox, train-rl.trainer.sandbox, "
        "eval.evaluator.sandbox"
    )


# -- the LLM endpoint ----------------------------------------------------------------------------

LLM = """
[synth-trajectories.source]
name = "bundled-catalog"

[synth-trajectories.sampler]
name = "llm-pipeline"

[synth-trajectories.sampler.llm]
name = "openai-compatible"
model = "m"
base_url = "{base_url}"
api_key_env = "ASTRA_TEST_PREFLIGHT_KEY"
{extra}
"""


def llm_problems(base_url: str, extra: str = "") -> list[Problem]:
    text = LLM.format(base_url=base_url, extra=extra)
    config, plugins = prepare(parse_config(tomllib.loads(text), path="llm.toml"))
    return preflight_problems(config, plugins.registry)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # free again once closed: nothing listens there


def test_an_llm_server_that_does_not_listen_is_a_problem_unless_the_cache_answers():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    (problem,) = llm_problems(url)
    assert problem.key == "synth-trajectories.sampler.llm"
    assert problem.component == "llm_backend 'openai-compatible'"
    assert f"cannot reach the LLM server at {url}" in problem.message
    assert 'cache_mode = "replay"' in problem.fix
    # replay answers from the response cache alone: no server is needed
    assert llm_problems(url, 'cache_mode = "replay"\ncache_dir = "cache"') == []


def test_a_live_llm_server_passes():
    with LoopbackServer(lambda request: Reply({})) as server:
        assert llm_problems(server.base_url) == []
        server.stop()  # the same URL, nobody listening
        assert len(llm_problems(server.base_url)) == 1


@pytest.fixture
def refusing_server() -> Iterator[str]:
    """A real HTTP server on loopback that refuses every request with 401."""

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_a_refused_key_is_a_problem_naming_the_variable(refusing_server):
    (problem,) = llm_problems(refusing_server)
    assert "refuses the API key (GET /models: HTTP 401)" in problem.message
    assert problem.fix == "put a valid key in $ASTRA_TEST_PREFLIGHT_KEY"


# -- a third-party component declares its needs ---------------------------------------------------

THIRD_PARTY = """
import attrs
from astra_core import hookimpl
from astra_core.options import component
from astra_core.preflight import Problem, missing_module, missing_program


@attrs.frozen
class Options:
    sandbox: object = component("sandbox", default="bubblewrap")
    fail: bool = False


def needs(options, base_dir):
    if options.fail:
        raise RuntimeError("cannot tell")
    return [
        *missing_program("astra-no-such-tool", fix="apt-get install astra-no-such-tool"),
        *missing_module("astra_no_such_module", fix="pip install astra-no-such-module",
                        severity="warning"),
        Problem(f"reads {base_dir.name}", "nothing to do", "warning"),
    ]


@hookimpl
def astra_register_environment_generators(registry):
    registry.add("needy", lambda options, builder: None, options=Options, preflight=needs)
"""


def third_party_config(tmp_path: Path, fail: bool = False) -> Path:
    (tmp_path / "needy.py").write_text(THIRD_PARTY, encoding="utf-8")
    config = tmp_path / "configs" / "run.toml"
    config.parent.mkdir()
    config.write_text(
        '[plugins]\nfiles = ["../needy.py"]\n'
        f'[synth-arenas.generator]\nname = "needy"\nfail = {str(fail).lower()}\n',
        encoding="utf-8",
    )
    return config


def test_a_plugin_file_declares_needs_its_nested_sandbox_is_checked_too(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    config, plugins = prepare(third_party_config(tmp_path))
    lines = [problem_line(p) for p in preflight_problems(config, plugins.registry)]
    assert lines[0] == (
        "[synth-arenas.generator] environment_generator 'needy' needs the astra-no-such-tool "
        "program, which is not on PATH; fix: apt-get install astra-no-such-tool"
    )
    assert "needs the Python package astra_no_such_module" in lines[1]
    assert lines[2].endswith("reads configs; fix: nothing to do")  # base_dir: the config's folder
    assert lines[3].startswith("[synth-arenas.generator.sandbox] sandbox 'bubblewrap' needs")
    monkeypatch.setenv("PATH", os.pathsep.join([str(tmp_path), "/usr/bin", "/bin"]))
    result = subprocess.run(
        [sys.executable, "-m", "astra_core.cli", "config", "check", str(config.path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2  # astra-no-such-tool is an error
    assert "1 problem to fix" in result.stderr
    # the warnings come after the problems, so that one check shows everything to fix
    assert (
        "\n  warning: [synth-arenas.generator] environment_generator 'needy' needs the "
        "Python package astra_no_such_module" in result.stderr
    )
    (tmp_path / "astra-no-such-tool").write_text("#!/bin/sh\n")
    (tmp_path / "astra-no-such-tool").chmod(0o755)
    result = subprocess.run(
        [sys.executable, "-m", "astra_core.cli", "config", "check", str(config.path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr  # warnings alone do not fail it
    assert result.stderr.startswith(
        "astra: warning: [synth-arenas.generator] environment_generator 'needy' needs the "
        "Python package astra_no_such_module"
    )


def test_a_check_that_raises_is_an_error_naming_its_plugin(tmp_path):
    config, plugins = prepare(third_party_config(tmp_path, fail=True))
    with pytest.raises(PluginError, match=r"plugin 'needy'.*preflight check of .*cannot tell"):
        preflight_problems(config, plugins.registry)


def test_the_guides_preflight_example_prints_what_the_guide_shows(tmp_path, monkeypatch):
    """docs/writing-plugins.md: the options class of rung 3 and the check of its preflight
    section, registered and asked for a config that names the verifier."""
    text = (ROOT / "docs" / "writing-plugins.md").read_text()
    section = text.split("## 3. Configuration", 1)[1].split("\n## 4.", 1)[0]
    options_code, needs_code = re.findall(r"```python\n(.*?)```", section, flags=re.S)[:2]
    (shown,) = re.findall(r"```console\n(.*?)```", section.split("(preflight)", 1)[1], re.S)[:1]
    module = types.ModuleType("thresholded")
    exec(compile(options_code, "writing-plugins.md", "exec"), module.__dict__)
    exec(compile(needs_code, "writing-plugins.md", "exec"), module.__dict__)
    plugins = load_plugins(objects=[("thresholded", module)])
    config = tmp_path / "run.toml"
    config.write_text('[eval.evaluator]\nname = "arena-eval"\nverifier = "thresholded"\n')
    config_obj, _ = prepare(config, plugins=plugins)
    monkeypatch.setenv("PATH", str(tmp_path))  # no jq
    lines = [problem_line(p) for p in preflight_problems(config_obj, plugins.registry)]
    assert lines[0] == shown.strip().splitlines()[-1].strip()
