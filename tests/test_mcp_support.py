"""Shared pieces of the MCP tests (no tests here): the real MCP servers they start, a git
repository and an SQLite database made for them, and a look at this process's children.

The servers are the reference ones from PyPI (mcp-server-time, mcp-server-git,
mcp-server-sqlite) plus ``notes``, a small server written with the mcp SDK's own high-level API
below: it publishes output schemas (so values can flow from one call to the next), keeps notes
in its process memory (so a reused session is visible) and has tools that sleep, read the
environment and crash (timeouts, ``${VAR}`` expansion, broken connections).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from astra_core.context import StageContext
from astra_core.plugins import load_plugins
from astra_core.records import Trajectory
from astra_core.registry import ComponentBuilder
from astra_core.store import RecordStore

COMMIT_MESSAGE = "Add the ASTRA probe readme"
ROWS = [(1, "ada", 36), (2, "grace", 45), (3, "alan", 41)]

WELCOME = {"note_id": "N-000", "text": "welcome"}  # the note every notes server starts with
NOTES_SERVER = '''
"""A small MCP server for ASTRA's tests, on the mcp SDK's high-level server API."""
import asyncio
import os

from typing_extensions import TypedDict

try:
    from mcp.server.fastmcp import FastMCP as Server  # mcp 1.x
except ImportError:
    from mcp.server.mcpserver import MCPServer as Server  # mcp 2.x

app = Server("notes")
NOTES: dict[str, str] = __WELCOME__


class Note(TypedDict):
    note_id: str
    text: str


class NoteList(TypedDict):
    notes: list[Note]


@app.tool()
def create_note(text: str) -> Note:
    """Create a note with the given text and return it with its new id."""
    note_id = f"N-{len(NOTES) + 1:03d}-{os.getpid()}"
    NOTES[note_id] = text
    return {"note_id": note_id, "text": text}


@app.tool()
def get_note(note_id: str) -> Note:
    """Return the note with this id."""
    if note_id not in NOTES:
        raise ValueError(f"no note {note_id}")
    return {"note_id": note_id, "text": NOTES[note_id]}


@app.tool()
def list_notes() -> NoteList:
    """List every note kept by this server process."""
    return {"notes": [{"note_id": k, "text": v} for k, v in NOTES.items()]}


@app.tool()
async def wait(seconds: float) -> str:
    """Sleep for the given number of seconds, then answer (other calls go on meanwhile)."""
    await asyncio.sleep(seconds)
    return "done"


@app.tool()
def read_env(name: str) -> str:
    """Return the value of an environment variable of the server process."""
    return os.environ.get(name, "")


@app.tool()
def crash() -> str:
    """Exit the server process at once, to break the connection."""
    os._exit(3)


if __name__ == "__main__":
    app.run()
'''.replace("__WELCOME__", repr({WELCOME["note_id"]: WELCOME["text"]}))


def need_mcp() -> None:
    pytest.importorskip("mcp", reason="the mcp SDK is not installed (extra: mcp)")


def time_command() -> list[str]:
    need_mcp()
    pytest.importorskip("mcp_server_time", reason="mcp-server-time is not installed")
    return [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]


def git_command(repo: Path) -> list[str]:
    need_mcp()
    pytest.importorskip("mcp_server_git", reason="mcp-server-git is not installed")
    return [sys.executable, "-m", "mcp_server_git", "--repository", str(repo)]


def sqlite_command(db: Path) -> list[str]:
    need_mcp()
    pytest.importorskip("mcp_server_sqlite", reason="mcp-server-sqlite is not installed")
    # its console script, as a user runs it (the package has no __main__)
    script = shutil.which("mcp-server-sqlite", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the mcp-server-sqlite script is not next to this Python")
    return [script, "--db-path", str(db)]


def notes_command(folder: Path) -> list[str]:
    need_mcp()
    script = folder / "notes_server.py"
    script.write_text(NOTES_SERVER, encoding="utf-8")
    return [sys.executable, str(script)]


def make_repo(folder: Path) -> Path:
    """A git repository with one commit whose message is ``COMMIT_MESSAGE``."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = folder / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("# probe\n", encoding="utf-8")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.org",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.org",
    }
    for args in (["init", "-q"], ["add", "README.md"], ["commit", "-q", "-m", COMMIT_MESSAGE]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    return repo


def make_db(folder: Path) -> Path:
    """An SQLite database with a ``people`` table holding ``ROWS``."""
    db = folder / "people.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, age INTEGER)")
        conn.executemany("INSERT INTO people VALUES (?, ?, ?)", ROWS)
    return db


def stage_context(tmp_path: Path) -> StageContext:
    builder = ComponentBuilder(load_plugins().registry)
    store = RecordStore(tmp_path / "synth-trajectories", Trajectory).open()
    return StageContext("synth-trajectories", run_dir=tmp_path, builder=builder, store=store)


def dropped(ctx: StageContext) -> list[dict[str, Any]]:
    import json

    assert ctx.store is not None
    ctx.store.close()
    path = ctx.out_dir / "dropped.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def child_processes(marker: str) -> list[int]:
    """Pids of this process's children whose command line contains ``marker`` (Linux)."""
    proc = Path("/proc")
    if not proc.is_dir():
        pytest.skip("needs /proc to count server processes")
    me = os.getpid()
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        # the parent pid is the second field after the ")" that closes the program name
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == me and marker in cmdline:
            found.append(int(entry.name))
    return found
