"""The persistent worker that runs inside the sandbox (standard library only).

Protocol: one JSON request per line on the original stdin, one JSON answer per line on the
original stdout. Both are moved to private descriptors before any tool code runs, and the
standard descriptors are pointed at /dev/null, so tool code that prints, closes fd 0-2 or
replaces sys.stdout cannot corrupt the channel; every answer echoes the request's nonce, so a
forged answer is detected by the host.
"""

import contextlib
import io
import json
import os
import sys
import traceback

MAX = int(os.environ.get("ASTRA_SANDBOX_MAX_OUTPUT", "65536"))


def _channel():
    rfd, wfd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    return os.fdopen(rfd, "r", encoding="utf-8"), os.fdopen(wfd, "w", encoding="utf-8")


def _render(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


def main():
    reader, writer = _channel()
    namespace = {"__name__": "__astra_tools__", "__builtins__": __builtins__}
    for line in reader:
        try:
            request = json.loads(line)
        except ValueError:
            continue
        out = io.StringIO()
        answer = {"nonce": request.get("nonce"), "error": None, "output": ""}
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                if request["op"] == "load":
                    exec(compile(request["code"], "<tool code>", "exec"), namespace)
                else:
                    fn = namespace.get(request["name"])
                    if not callable(fn):
                        raise NameError(f"no function named {request['name']!r} is defined")
                    result = fn(**request.get("arguments", {}))
                    printed = out.getvalue().rstrip("\n")
                    rendered = _render(result)
                    out = io.StringIO(printed + (("\n" if printed and rendered else "") + rendered))
        except BaseException as exc:  # the tool's error is the call's observation
            if isinstance(exc, KeyboardInterrupt):
                raise
            tb = traceback.format_exception_only(type(exc), exc)
            answer["error"] = "".join(tb).strip()
        text = out.getvalue()
        if len(text) > MAX:
            text, answer["truncated"] = text[:MAX], True
        answer["output"] = text
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        writer.write(json.dumps(answer) + "\n")
        writer.flush()


if __name__ == "__main__":
    main()
