"""``transformers serve`` as a real OpenAI-compatible server for the tests that need one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import free_port


def serve_available() -> bool:
    """Whether this transformers has the serving extra (fastapi, uvicorn, openai)."""
    probe = "from transformers.utils.import_utils import is_serve_available as a; print(a())"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    return out.stdout.strip() == "True"


@contextmanager
def transformers_serve(
    model: Path, log: Path, *, timeout_s: float, env: Mapping[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``model`` served on a free loopback port, offline, its output in ``log``: the process
    and its base URL (``.../v1`` is the API) once ``/health`` answers; the test fails with the
    log's tail when it exits or does not answer within ``timeout_s``. Killed on leaving."""
    port = free_port()
    full_env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
        **(env or {}),
    }
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "transformers.cli.transformers", "serve", str(model)),
                *("--host", "127.0.0.1", "--port", str(port), "--device", "cpu"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail(f"transformers serve did not start: {log.read_text()[-2000:]}")
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
