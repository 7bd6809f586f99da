"""The persistent worker that runs inside the sandbox (standard library only, run as a script).

Protocol: one JSON request per line on the original stdin, one JSON answer per line on the
original stdout. Both are moved to private, non-inheritable descriptors before any tool code
runs; then fd 0 reads /dev/null and fds 1 and 2 write to a private capture file, and during a
call ``sys.stdout``/``sys.stderr`` are capped in-memory buffers. So tool code that prints,
writes to fd 1, closes fd 0-2 or replaces ``sys.stdout`` cannot corrupt the channel: what it
prints becomes the call's output, JSON-escaped inside the real answer. Every answer echoes the
request's nonce and the host accepts exactly one answer line per request, so a frame forged on
the private descriptor is detected (the host then kills this worker).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import signal
import sys
import traceback
from typing import Any, TextIO

MAX = int(os.environ.get("ASTRA_SANDBOX_MAX_OUTPUT", "65536"))


class _Sink(io.TextIOBase):
    """A text stream that keeps the first MAX characters and drops (but notes) the rest."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.size = 0
        self.truncated = False

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = MAX - self.size
        if len(text) > room:
            self.truncated = True
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(len(text), room)
        return len(text)

    def getvalue(self) -> str:
        return "".join(self.parts)


def _capture_file() -> int:
    """An anonymous file in the private /tmp for what tool code writes to fd 1 and 2."""
    try:
        return os.open("/tmp", os.O_TMPFILE | os.O_RDWR, 0o600)
    except (AttributeError, OSError):
        import tempfile

        fd, path = tempfile.mkstemp(prefix="astra-capture-")
        os.unlink(path)
        return fd


def _channel() -> tuple[TextIO, Any, TextIO, int, int]:
    rfd, wfd, efd = os.dup(0), os.dup(1), os.dup(2)  # os.dup makes them non-inheritable
    null = os.open(os.devnull, os.O_RDWR)
    capture = _capture_file()
    os.set_inheritable(null, False)
    os.set_inheritable(capture, False)
    reader = os.fdopen(rfd, "r", encoding="utf-8")
    writer = os.fdopen(wfd, "wb")
    return reader, writer, os.fdopen(efd, "w"), null, capture


def _point_std_fds(null: int, capture: int) -> None:
    # again before every call: the previous call may have closed or redirected them
    os.dup2(null, 0)
    os.dup2(capture, 1)
    os.dup2(capture, 2)
    os.lseek(capture, 0, os.SEEK_SET)
    os.ftruncate(capture, 0)


def _fd_output(capture: int) -> str:
    os.lseek(capture, 0, os.SEEK_SET)
    data = os.read(capture, MAX + 1)
    return data.decode("utf-8", "replace")


def _become_subreaper() -> None:
    """Orphans of tool code become this worker's children, so ``_end_children`` finds them."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _children() -> list[int]:
    pids: list[int] = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as fh:
                pids += [int(p) for p in fh.read().split()]
    except (OSError, ValueError):
        pass
    return pids


def _end_children() -> None:
    """Processes a call started do not outlive it: a fork bomb or a forgotten server would
    otherwise hold the process budget for the rest of the episode."""
    for _ in range(100):
        pids = _children()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)


def _render(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _limit_of(exc: BaseException) -> str | None:
    """The sandbox limit behind an exception the tool code got, if it is one."""
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, OSError) and exc.errno is not None:
        return {
            errno.EAGAIN: "processes",
            errno.EMFILE: "open-files",
            errno.ENFILE: "open-files",
            errno.EFBIG: "file-size",
            errno.ENOSPC: "tmp-space",
        }.get(exc.errno)
    return None


def _run(request: dict[str, Any], namespace: dict[str, Any]) -> Any:
    if request.get("op") == "load":
        exec(compile(request["code"], "<tool code>", "exec"), namespace)
        return None
    name = str(request.get("name"))
    fn = namespace.get(name)
    if not callable(fn):
        raise NameError(f"no function named {name!r} is defined")
    return fn(**(request.get("arguments") or {}))


def main() -> None:
    reader, writer, errors, null, capture = _channel()
    try:
        serve(reader, writer, null, capture)
    except BaseException:
        # the worker itself failed (the tool code broke it): tell the host on the real stderr
        try:
            errors.write(traceback.format_exc().encode("utf-8", "replace").decode("utf-8"))
            errors.flush()
        finally:
            raise


def serve(reader: TextIO, writer: Any, null: int, capture: int) -> None:
    # past the file-size limit a write fails with EFBIG instead of killing the worker
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _become_subreaper()
    me = os.getpid()
    namespace = {"__name__": "__astra_tools__", "__builtins__": __builtins__}
    for line in reader:
        try:
            request = json.loads(line)
        except ValueError:
            continue
        answer = {"nonce": request.get("nonce"), "error": None, "limit": None}
        sink = _Sink()
        _point_std_fds(null, capture)
        sys.stdout = sys.stderr = sink
        rendered = ""
        try:
            rendered = _render(_run(request, namespace))
        except BaseException as exc:  # the tool's error (even SystemExit) is the observation
            answer["error"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            answer["limit"] = _limit_of(exc)
        finally:
            if os.getpid() != me:
                os._exit(0)  # a process the tool forked must never answer in the worker's name
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        _end_children()
        printed = [p.rstrip("\n") for p in (sink.getvalue(), _fd_output(capture))]
        text = "\n".join(p for p in (*printed, rendered) if p)
        if sink.truncated or len(text) > MAX:
            text, answer["truncated"] = text[:MAX], True
        answer["output"] = text
        # lone surrogates (from bytes the tool decoded badly) become "?" instead of failing
        writer.write((json.dumps(answer, ensure_ascii=False) + "\n").encode("utf-8", "replace"))
        writer.flush()


if __name__ == "__main__":
    main()
