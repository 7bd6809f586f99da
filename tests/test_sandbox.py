"""The sandboxes with hostile code: every attack is contained, reported, and the host lives on."""
# ruff: noqa: E501  (hostile programs are kept on one line each, as an attacker would send them)

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time

import pytest
from astra_sandbox import launch
from astra_sandbox.limits import nproc_limit, user_tasks
from conftest import astra

from astra_core.errors import AstraError
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.protocols import Sandbox
from astra_core.registry import ComponentBuilder

BWRAP_PROBLEM = launch.bubblewrap_problem()  # not installed, or no namespaces in this container
HAS_BWRAP = BWRAP_PROBLEM is None
needs_bwrap = pytest.mark.skipif(
    not HAS_BWRAP, reason=f"bubblewrap sandbox unavailable: {BWRAP_PROBLEM}"
)
LIMITS = {
    "timeout_s": 3.0,
    "cpu_s": 20,
    "memory_mb": 512,
    "max_processes": 16,
    "max_output_bytes": 20000,
}
BACKENDS = [pytest.param("bwrap", marks=needs_bwrap), "plain"]


def _spec(name: str, **overrides: object) -> ComponentSpec:
    return ComponentSpec(name, {**LIMITS, **overrides})


@pytest.fixture(scope="module")
def builder() -> ComponentBuilder:
    return ComponentBuilder(load_plugins().registry)


@pytest.fixture(scope="module")
def bwrap(builder):
    if not HAS_BWRAP:
        pytest.skip(f"bubblewrap sandbox unavailable: {BWRAP_PROBLEM}")
    return builder.build("sandbox", _spec("bubblewrap"))


@pytest.fixture(scope="module")
def plain(builder):
    return builder.build("sandbox", _spec("subprocess"))


def test_subprocess_backend_warns_loudly_once(builder, caplog):
    launch._warned = False  # another test may have built one first in this process
    with caplog.at_level(logging.WARNING, logger="astra.sandbox"):
        builder.build("sandbox", "subprocess")
        builder.build("sandbox", "subprocess")
    said = [r for r in caplog.records if "does NOT isolate" in r.getMessage()]
    assert len(said) == 1 and "the file system or the network" in said[0].getMessage()


@pytest.mark.parametrize("which", BACKENDS)
def test_normal_code_runs_and_prints(request, which):
    sandbox = request.getfixturevalue(which)
    assert isinstance(sandbox, Sandbox)
    result = sandbox.run(
        "import math, sys\nprint(math.factorial(10))\nprint('warn', file=sys.stderr)\nraise SystemExit(3)\n"
    )
    assert result.stdout == "3628800\n" and result.stderr == "warn\n"
    assert result.exit_code == 3 and result.limit is None and not result.ok
    assert 0 < result.duration_s < 3
    # the limits are in force before the code runs
    limits = sandbox.run(
        "import resource as r\nprint(r.getrlimit(r.RLIMIT_AS)[0] >> 20, r.getrlimit(r.RLIMIT_CPU)[0], r.getrlimit(r.RLIMIT_NOFILE)[0])"
    )
    assert limits.ok and limits.stdout.split() == [
        str(LIMITS["memory_mb"]),
        str(LIMITS["cpu_s"]),
        "64",
    ]


@pytest.mark.parametrize("backend", [pytest.param("bubblewrap", marks=needs_bwrap), "subprocess"])
def test_an_interpreter_named_by_a_relative_path_runs(builder, backend, tmp_path, monkeypatch):
    """``python = "bin/python"`` is found from where ASTRA runs, not from the directory the
    sandbox starts the code in (bubblewrap's /tmp, the subprocess backend's scratch folder)."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").symlink_to(sys.executable)
    monkeypatch.chdir(tmp_path)
    sandbox = builder.build("sandbox", _spec(backend, python="bin/python"))
    result = sandbox.run("print(6 * 7)\n")
    assert result.ok and result.stdout == "42\n", result.stderr


@pytest.mark.parametrize("backend", [pytest.param("bubblewrap", marks=needs_bwrap), "subprocess"])
def test_site_packages_false_leaves_the_standard_library_only(builder, backend):
    """``site_packages = false`` starts the interpreter with -S: the standard library imports,
    an installed package (attrs, a dependency of ASTRA) does not; by default both do."""
    probe = "import json, attrs\nprint(json.dumps(attrs.__name__))\n"
    default = builder.build("sandbox", _spec(backend)).run(probe)
    assert default.ok and default.stdout == '"attrs"\n', default.stderr
    bare = builder.build("sandbox", _spec(backend, site_packages=False))
    result = bare.run(probe)
    assert not result.ok and "No module named 'attrs'" in result.stderr
    assert "site_packages = false" in result.stderr  # the reason, said where the error is
    with bare.session(timeout_s=5) as worker:  # the persistent worker starts the same way
        assert worker.load("import json\ndef f():\n    return json.dumps([1])\n").error is None
        assert worker.call("f", {}).output == "[1]"
        error = worker.load("import attrs\n").error or ""
        assert "No module named 'attrs'" in error and "site_packages = false" in error


@needs_bwrap
def test_no_network_even_to_the_host_loopback(bwrap):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(3)
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    try:
        code = (
            "import socket\n"
            f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=1); print('CONNECTED')\n"
            "except OSError as e:\n    print('blocked', type(e).__name__)\n"
            "try:\n    socket.getaddrinfo('example.com', 80); print('RESOLVED')\nexcept OSError:\n    print('no dns')\n"
        )
        result = bwrap.run(code)
        assert "blocked" in result.stdout and "CONNECTED" not in result.stdout, result
        assert "no dns" in result.stdout
        time.sleep(0.1)
        assert not accepted, "the sandbox reached a socket on the host"
        # the control: the same server is reachable from the host, so the block is the sandbox's
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        time.sleep(0.1)
        assert accepted
    finally:
        server.close()


@needs_bwrap
def test_file_system_is_read_only_private_and_hides_secrets(bwrap, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    target = tmp_path / "written.txt"
    code = (
        f"for op in ('read', 'write'):\n"
        f"    try:\n"
        f"        if op == 'read': print('READ', open({str(secret)!r}).read())\n"
        f"        else: open({str(target)!r}, 'w').write('x'); print('WROTE')\n"
        f"    except OSError as e: print(op, 'blocked', type(e).__name__)\n"
        "for path in ('/etc/astra-owned', '/usr/astra-owned', '/astra-owned'):\n"
        "    try: open(path, 'w'); print('WROTE', path)\n"
        "    except OSError: print('blocked', path)\n"
        "for path in ('/etc/shadow', '/etc/ssh/ssh_host_rsa_key', '/root/.bashrc', '/root/.ssh/id_rsa'):\n"
        "    try: open(path).read(); print('READ', path)\n"
        "    except OSError: print('hidden', path)\n"
        "import os\nprint('root has', sorted(os.listdir('/root')))\n"
        "print('caps', open('/proc/self/status').read().split('CapEff:')[1].split()[0])\n"
        "open('/tmp/scratch', 'w').write('ok'); print('tmp ok')\n"
    )
    result = bwrap.run(code)
    out = result.stdout
    assert "READ" not in out and "read blocked" in out, out
    assert "WROTE" not in out and not target.exists()
    assert out.count("blocked /") == 3 and not os.path.exists("/etc/astra-owned")
    assert out.count("hidden /") == 4
    allowed = {
        os.path.relpath(p, "/root").split("/")[0]
        for p in launch.BubblewrapLauncher(bwrap.options)._python_dirs()
        if p.startswith("/root/")
    }
    assert f"root has {sorted(allowed)}" in out  # only the interpreter, nothing else of /root
    assert "caps 0000000000000000" in out and "tmp ok" in out
    # /tmp is private to each run: the host's /tmp and the previous run's files are not there
    again = bwrap.run(
        f"import os\nprint(os.path.exists('/tmp/scratch'), os.path.exists({str(secret)!r}))"
    )
    assert again.stdout.strip() == "False False"


HOSTILE_RUNS = {
    "fork-bomb": (
        "import os, time\nwhile True:\n    if os.fork() == 0:\n        time.sleep(30)\n",
        "processes",
    ),
    "memory-bomb": ("x = bytearray(3 * 1024 ** 3)\n", "memory"),
    "infinite-loop": ("while True:\n    pass\n", "timeout"),
    "huge-output": ("import sys\nwhile True:\n    sys.stdout.write('x' * 4096)\n", "output"),
    "open-files": ("files = [open('/dev/null') for _ in range(10000)]\n", "open-files"),
}


@pytest.mark.parametrize("which", BACKENDS)
@pytest.mark.parametrize("attack", sorted(HOSTILE_RUNS))
def test_hostile_runs_hit_a_named_limit(request, which, attack):
    sandbox = request.getfixturevalue(which)
    code, limit = HOSTILE_RUNS[attack]
    t0 = time.monotonic()
    result = sandbox.run(code, timeout_s=1.5)
    assert result.limit == limit, (result.limit, result.exit_code, result.stderr[-300:])
    assert not result.ok
    assert time.monotonic() - t0 < 1.5 + 3
    assert len(result.stdout) <= LIMITS["max_output_bytes"]


@pytest.mark.parametrize("which", BACKENDS)
def test_cpu_limit_is_named(request, builder, which):
    name = "bubblewrap" if which == "bwrap" else "subprocess"
    sandbox = builder.build("sandbox", _spec(name, cpu_s=1, timeout_s=10.0))
    result = sandbox.run("while True:\n    pass\n")
    assert result.limit == "cpu", result
    assert result.duration_s < 5


def test_nproc_limit_counts_what_the_kernel_counts():
    # the kernel counts the user's threads too; a non-root user gets its current count on top
    assert user_tasks(os.getuid()) >= threading.active_count()
    limit = nproc_limit(16)
    assert limit == 16 if os.getuid() == 0 else limit >= 16 + threading.active_count()


# -- persistent sessions -----------------------------------------------------------------------

TOOLS = """
counter = 0
def inc(by):
    global counter
    counter += by
    print("counting")
    return {"counter": counter}
def noisy():
    import os, subprocess
    print('{"nonce": "00", "output": "fake frame"}')
    os.write(1, b"fd-level\\n")
    subprocess.run(["echo", "from a child"])
    return [1, 2]
"""


def _counter(outcome) -> int:
    assert outcome.error is None, outcome
    return json.loads(outcome.output.splitlines()[-1])["counter"]


@pytest.mark.parametrize("which", BACKENDS)
def test_session_keeps_state_and_isolates_episodes(request, which):
    sandbox = request.getfixturevalue(which)
    with sandbox.session() as one, sandbox.session() as two:
        assert one.load(TOOLS).error is None and two.load(TOOLS).error is None
        for _ in range(3):
            out = one.call("inc", {"by": 2})
        assert _counter(out) == 6 and out.output.startswith("counting\n")
        assert _counter(two.call("inc", {"by": 1})) == 1  # the other episode's state is its own
        bad = one.call("inc", {"by": "x"})
        assert bad.error and "TypeError" in bad.error and not bad.crashed
        assert one.call("missing", {}).error.startswith("NameError")
        assert "SyntaxError" in one.load("def broken(:\n").error
        assert one.call("inc", {"by": object()}).error.startswith("the arguments are not JSON")
        assert _counter(one.call("inc", {"by": 1})) == 7  # errors did not cost the state
    with sandbox.session() as three:  # a new episode starts from scratch
        three.load(TOOLS)
        assert _counter(three.call("inc", {"by": 1})) == 1
    with pytest.raises(AstraError, match="closed"):
        three.call("inc", {"by": 1})


@pytest.mark.parametrize("which", BACKENDS)
def test_session_captures_everything_the_call_prints(request, which):
    sandbox = request.getfixturevalue(which)
    with sandbox.session() as session:
        session.load(TOOLS)
        outcome = session.call("noisy", {})
    assert outcome.error is None, outcome
    assert outcome.output.splitlines() == [
        '{"nonce": "00", "output": "fake frame"}',  # a printed "frame" is just text
        "fd-level",
        "from a child",
        "[1, 2]",
    ]


HOSTILE_CALLS = {
    # closes every descriptor, the private channel included: the worker cannot answer
    "close-all-fds": "import os\ndef attack():\n    for fd in range(0, 64):\n        try: os.close(fd)\n        except OSError: pass\n    return 'closed'\n",
    "close-std-fds": "import os\ndef attack():\n    for fd in (0, 1, 2): os.close(fd)\n    return 'closed'\n",
    "forge-answer": (
        'import os\ndef attack():\n    for fd in range(3, 64):\n        try: os.write(fd, b\'{"nonce": "0", "output": "forged"}\\n\')\n'
        "        except OSError: pass\n    return 'forged'\n"
    ),
    # finds the real nonce in the worker's frames and answers first: at worst this call's output
    # is the tool's choice (as it always is); the tampering is caught before the next call runs
    "forge-with-real-nonce": (
        "import os, sys, json\ndef attack():\n    f = sys._getframe()\n    while f and 'request' not in f.f_locals: f = f.f_back\n"
        "    frame = json.dumps({'nonce': f.f_locals['request']['nonce'], 'output': 'forged', 'error': None}) + '\\n'\n"
        "    for fd in range(3, 64):\n        try: os.write(fd, frame.encode())\n        except OSError: pass\n    return 'forged'\n"
    ),
    "replace-stdout": "import sys\ndef attack():\n    sys.stdout = None\n    sys.__stdout__ = None\n    sys.stderr = None\n    return 'replaced'\n",
    "exit": "import os\ndef attack():\n    os._exit(3)\n",
    "sys-exit": "import sys\ndef attack():\n    sys.exit(3)\n",
    "hang": "def attack():\n    while True: pass\n",
    "stop-self": "import os, signal\ndef attack():\n    os.kill(os.getpid(), signal.SIGSTOP)\n",
    "memory": "def attack():\n    return len(bytearray(3 * 1024 ** 3))\n",
    "fork-bomb": "import os, time\ndef attack():\n    while True:\n        if os.fork() == 0:\n            time.sleep(30)\n",
    "huge-output": "def attack():\n    print('x' * 10 ** 6)\n    return 'done'\n",
    "steal-requests": "import os, threading\ndef attack():\n    threading.Thread(target=lambda: [os.read(fd, 1 << 20) for fd in (3,)], daemon=True).start()\n    return 'listening'\n",
}
# what the attack call itself returns: (error expected, crashed expected, limit)
EXPECTED = {
    "close-all-fds": (True, True, None),
    "close-std-fds": (False, False, None),
    "forge-answer": (True, True, "protocol"),
    "replace-stdout": (False, False, None),
    "exit": (True, True, None),
    "sys-exit": (True, False, None),
    "hang": (True, True, "timeout"),
    "stop-self": (True, True, "timeout"),
    "memory": (True, False, "memory"),
    "fork-bomb": (True, False, "processes"),
    "huge-output": (False, False, "output"),
}


@pytest.mark.parametrize("which", BACKENDS)
@pytest.mark.parametrize("attack", sorted(HOSTILE_CALLS))
def test_hostile_calls_in_a_session_are_contained(request, which, attack):
    sandbox = request.getfixturevalue(which)
    with sandbox.session(timeout_s=1.5) as session:
        assert session.load(TOOLS).error is None
        assert session.load(HOSTILE_CALLS[attack]).error is None
        assert _counter(session.call("inc", {"by": 5})) == 5
        outcome = session.call("attack", {})
        assert "forged" not in outcome.output or attack == "forge-with-real-nonce"
        if attack in EXPECTED:
            error, crashed, limit = EXPECTED[attack]
            assert bool(outcome.error) == error and outcome.crashed == crashed, outcome
            assert outcome.limit == limit, outcome
        if outcome.crashed:
            assert "state lost" in outcome.error
        if attack == "huge-output":
            assert outcome.output.endswith("[output truncated]") and len(outcome.output) < 21000
        # a big request to a worker that may be stopped or not reading must not hang the host
        t0 = time.monotonic()
        session.load("BIG = '" + "a" * 300_000 + "'\n")
        assert time.monotonic() - t0 < 2 * 1.5 + 2
        # the session answers again: the same worker with its state, or a fresh one, code reloaded
        for _ in range(2):
            after = session.call("inc", {"by": 1})
            if after.error is None:
                break
            assert after.crashed and after.limit in ("protocol", "timeout"), after
        assert _counter(after) in (1, 6, 2, 7)
        # and it can still start processes (whatever the attack left running is gone)
        assert session.call("noisy", {}).output.endswith("from a child\n[1, 2]")


@needs_bwrap
def test_killing_the_sandbox_parent_does_not_reach_the_host(bwrap):
    with bwrap.session(timeout_s=1.5) as session:
        session.load(
            "import os, signal\ndef attack():\n    os.kill(os.getppid(), signal.SIGKILL)\n    return os.getppid()\n"
        )
        session.call("attack", {})
        session.load(TOOLS)
        assert _counter(session.call("inc", {"by": 1})) == 1
    assert os.getpid() > 0  # still here


@needs_bwrap
def test_sessions_have_private_tmp(bwrap):
    with bwrap.session() as one, bwrap.session() as two:
        one.load(
            "def put():\n    open('/tmp/state', 'w').write('one')\ndef get():\n    import os\n    return os.path.exists('/tmp/state')\n"
        )
        two.load("def get():\n    import os\n    return os.path.exists('/tmp/state')\n")
        one.call("put", {})
        assert one.call("get", {}).output == "true" and two.call("get", {}).output == "false"


# -- the command line --------------------------------------------------------------------------


def test_sandbox_run_command_prints_json(tmp_path):
    script = tmp_path / "tool.py"
    script.write_text("print('hi')\nraise SystemExit(4)\n")
    result = astra("sandbox", "run", str(script))
    data = json.loads(result.stdout)
    assert result.returncode == 1
    assert data["stdout"] == "hi\n" and data["exit_code"] == 4 and data["limit"] is None
    assert data["backend"] == ("bubblewrap" if HAS_BWRAP else "subprocess")
    assert set(data) == {"backend", "stdout", "stderr", "exit_code", "limit", "duration_s"}


def test_sandbox_run_command_says_when_it_falls_back(tmp_path):
    # No bwrap on PATH (python is run by its full path): the debugging command falls back, aloud.
    script = tmp_path / "tool.py"
    script.write_text("print('hi')\n")
    empty = tmp_path / "bin"
    empty.mkdir()
    result = astra("sandbox", "run", str(script), env={"PATH": str(empty)})
    data = json.loads(result.stdout)
    assert result.returncode == 0 and data["backend"] == "subprocess" and data["stdout"] == "hi\n"
    assert "bubblewrap (bwrap) is not installed; falling back" in result.stderr
    assert result.stderr.count("does NOT isolate") == 1


def test_sandbox_run_command_other_backend_and_limits(tmp_path):
    script = tmp_path / "loop.py"
    script.write_text("while True:\n    pass\n")
    result = astra("sandbox", "run", "--backend", "subprocess", "-o", "timeout_s=1", str(script))
    data = json.loads(result.stdout)
    assert result.returncode == 1 and data["limit"] == "timeout" and data["backend"] == "subprocess"
    assert result.stderr.count("does NOT isolate") == 1, result.stderr  # one warning, not two
    bad = astra("sandbox", "run", "--backend", "no-such-sandbox", str(script))
    assert bad.returncode == 2 and "unknown sandbox 'no-such-sandbox'" in bad.stderr


@needs_bwrap
def test_a_python_under_tmp_is_visible_inside_the_private_tmp(tmp_path, monkeypatch):
    # A checkout (and its venv) under /tmp, as CI clones often are: bound over the tmpfs.
    venv = tmp_path / "venv"
    venv.mkdir()
    prefix = os.path.realpath(venv)
    if not prefix.startswith("/tmp/"):
        pytest.skip("pytest's tmp_path is not under /tmp here")
    monkeypatch.setattr(launch.sys, "prefix", prefix)
    argv = launch.BubblewrapLauncher(launch.SandboxOptions()).argv(tmp_path, "main.py")
    tmpfs = argv.index("--tmpfs")
    binds = [i for i, a in enumerate(argv) if a == prefix and argv[i - 1] == "--ro-bind"]
    assert binds and all(i > tmpfs for i in binds), argv
    assert "/tmp" not in [argv[i + 1] for i, a in enumerate(argv) if a == "--ro-bind"]
