"""The sandboxes with hostile code: every attack is contained, reported, and the host lives on."""
# ruff: noqa: E501  (hostile programs are kept on one line each, as an attacker would send them)

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time

import pytest
from conftest import astra

from astra_core.plugins import load_plugins
from astra_core.registry import ComponentBuilder

needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed"
)
LIMITS = {"timeout_s": 3.0, "memory_mb": 512, "max_processes": 16, "max_output_bytes": 20000}


@pytest.fixture(scope="module")
def builder():
    return ComponentBuilder(load_plugins().registry)


@pytest.fixture(scope="module")
def bwrap(builder):
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    return builder.build("sandbox", _spec("bubblewrap"))


@pytest.fixture(scope="module")
def plain(builder):
    with pytest.warns(RuntimeWarning, match="does NOT isolate"):
        return builder.build("sandbox", _spec("subprocess"))


def _spec(name):
    from astra_core.options import ComponentSpec

    return ComponentSpec(name, dict(LIMITS))


def test_normal_code_runs_and_prints(bwrap):
    result = bwrap.run("import math\nprint(math.factorial(10))\n")
    assert result.ok and result.stdout.strip() == "3628800"
    assert result.limit is None and result.duration_s < 3


@needs_bwrap
def test_no_network_even_to_the_host_loopback(bwrap):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    try:
        code = (
            "import socket\n"
            f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=1); print('CONNECTED')\n"
            "except OSError as e:\n    print('blocked', type(e).__name__)\n"
        )
        result = bwrap.run(code)
        assert "blocked" in result.stdout and "CONNECTED" not in result.stdout
        time.sleep(0.1)
        assert not accepted, "the sandbox reached a socket on the host"
    finally:
        server.close()


@needs_bwrap
def test_file_system_is_read_only_and_private(bwrap, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    target = tmp_path / "written.txt"
    code = (
        f"for op in ('read', 'write'):\n"
        f"    try:\n"
        f"        if op == 'read': print('READ', open({str(secret)!r}).read())\n"
        f"        else: open({str(target)!r}, 'w').write('x'); print('WROTE')\n"
        f"    except OSError as e: print(op, 'blocked', type(e).__name__)\n"
        "try:\n    open('/etc/astra-owned', 'w')\nexcept OSError as e: print('etc blocked')\n"
        "open('/tmp/scratch', 'w').write('ok'); print('tmp ok')\n"
    )
    result = bwrap.run(code)
    assert "READ" not in result.stdout and "read blocked" in result.stdout
    assert "WROTE" not in result.stdout and not target.exists()
    assert "etc blocked" in result.stdout and "tmp ok" in result.stdout
    assert not os.path.exists("/etc/astra-owned")


@pytest.mark.parametrize("which", ["bwrap", "plain"])
@pytest.mark.parametrize(
    ("code", "limit"),
    [
        (
            "import os, time\nwhile True:\n    if os.fork() == 0:\n        time.sleep(30)\n",
            "processes",
        ),
        ("x = bytearray(3 * 1024 ** 3)\n", "memory"),
        ("while True:\n    pass\n", "timeout"),
        ("import sys\nwhile True:\n    sys.stdout.write('x' * 4096)\n", "output"),
    ],
    ids=["fork-bomb", "memory-bomb", "infinite-loop", "huge-output"],
)
def test_hostile_runs_hit_a_named_limit(request, which, code, limit):
    sandbox = request.getfixturevalue(which)
    t0 = time.monotonic()
    result = sandbox.run(code)
    assert result.limit == limit, (result.limit, result.stderr[-300:])
    assert not result.ok
    assert time.monotonic() - t0 < LIMITS["timeout_s"] + 5
    assert len(result.stdout) <= LIMITS["max_output_bytes"]


TOOLS = """
counter = 0
def inc(by):
    global counter
    counter += by
    print("counting")
    return {"counter": counter}
"""


@pytest.mark.parametrize("which", ["bwrap", "plain"])
def test_session_keeps_state_and_isolates_episodes(request, which):
    sandbox = request.getfixturevalue(which)
    with sandbox.session() as one, sandbox.session() as two:
        assert one.load(TOOLS).error is None and two.load(TOOLS).error is None
        for _ in range(3):
            out = one.call("inc", {"by": 2})
        assert json.loads(out.output.splitlines()[-1]) == {"counter": 6}
        assert out.output.startswith("counting")
        assert json.loads(two.call("inc", {"by": 1}).output.splitlines()[-1]) == {"counter": 1}
        bad = one.call("inc", {"by": "x"})
        assert bad.error and "TypeError" in bad.error
        assert one.call("missing", {}).error.startswith("NameError")


HOSTILE_CALLS = {
    "close-pipes": "import os\ndef attack():\n    for fd in range(0, 64):\n        try: os.close(fd)\n        except OSError: pass\n    return 'closed'\n",
    "forge-answer": (
        'import os\ndef attack():\n    for fd in range(3, 64):\n        try: os.write(fd, b\'{"nonce": "0", "output": "forged"}\\n\')\n'
        "        except OSError: pass\n    return 'forged'\n"
    ),
    "replace-stdout": "import sys\ndef attack():\n    sys.stdout = None\n    sys.__stdout__ = None\n    return 'replaced'\n",
    "exit": "import os\ndef attack():\n    os._exit(3)\n",
    "hang": "def attack():\n    while True: pass\n",
    "memory": "def attack():\n    return len(bytearray(3 * 1024 ** 3))\n",
}


@pytest.mark.parametrize("attack", sorted(HOSTILE_CALLS))
def test_hostile_calls_in_a_session_are_contained(bwrap, attack):
    with bwrap.session() as session:
        session.load(TOOLS)
        session.load(HOSTILE_CALLS[attack])
        session.call("inc", {"by": 5})
        outcome = session.call("attack", {})
        assert outcome.output != "forged"
        if attack == "replace-stdout":
            assert outcome.error is None
        elif attack != "close-pipes":
            assert outcome.error, outcome
        # the session answers the next call (restarted with the code loaded, state lost if it died)
        after = session.call("inc", {"by": 1})
        assert after.error is None, after
        assert json.loads(after.output.splitlines()[-1])["counter"] in (1, 6)


def test_sandbox_run_command_prints_json(tmp_path):
    script = tmp_path / "tool.py"
    script.write_text("print('hi')\nraise SystemExit(4)\n")
    result = astra("sandbox", "run", str(script))
    data = json.loads(result.stdout)
    assert result.returncode == 1
    assert data["stdout"] == "hi\n" and data["exit_code"] == 4 and data["limit"] is None
    assert data["backend"] == ("bubblewrap" if shutil.which("bwrap") else "subprocess")
