from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PLUGIN_FILES = FIXTURES / "plugins"


def astra(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real ``astra`` command line in a fresh interpreter."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("ASTRA_PLUGINS", None) if env is None or "ASTRA_PLUGINS" not in env else None
    return subprocess.run(
        [sys.executable, "-m", "astra_core.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def write_config(tmp_path: Path):
    def write(text: str, name: str = "run.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def small_quickstart(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Any, Path]:
    """The quickstart cut down (``test_quickstart.shrunk``, four RL steps for a curve), run once
    for every test that reads what a whole run leaves: its config, report and directory."""
    from test_quickstart import QUICKSTART, shrunk

    from astra_core.config import parse_config
    from astra_core.pipeline import run

    data = shrunk()
    data["train-rl"]["trainer"].update(steps=4)
    out = tmp_path_factory.mktemp("small-quickstart")
    return data, run(parse_config(data, path=str(QUICKSTART)), out, quiet=True), out
