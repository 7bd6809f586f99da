"""Gold calls run in the sandbox: a tool is accepted only when its call prints the gold answer.

As in the paper (code + ``print(call)`` in a code sandbox, pass iff the sub-answer is a substring
of stdout), but several checks share one sandbox run: each code unit is executed in its own
namespace, then each call statement is printed between marker lines that carry a random nonce,
so a tool cannot forge the boundaries of another call's output.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence

import attrs

from astra_core.protocols import Sandbox
from astra_core.records import Arena, ToolCall
from astra_core.sandbox_policy import llm_written, require_isolation

__all__ = [
    "CheckResult",
    "GoldCheck",
    "arena_checks",
    "call_statement",
    "harness_script",
    "run_checks",
    "verify_arena",
]


@attrs.frozen
class GoldCheck:
    """Run ``call`` in the namespace of code unit ``unit``; pass iff stdout holds ``answer``."""

    key: str
    unit: str
    call: ToolCall
    answer: str


@attrs.frozen
class CheckResult:
    """What one gold check gave: the call and its answer, the output, whether it passed and
    why not."""

    key: str
    call: ToolCall
    answer: str
    output: str
    passed: bool
    reason: str = ""


_HARNESS = """\
import json as _json, sys as _sys, traceback as _tb
_UNITS = _json.loads({units})
_CALLS = _json.loads({calls})
_MARK = {mark!r}
_NS = {{}}
for _name, _src in _UNITS.items():
    _g = {{"__name__": "astra_tool_unit"}}
    try:
        exec(compile(_src, "<tool " + _name + ">", "exec"), _g)
    except BaseException:
        print(_MARK + "load-error " + _name, flush=True)
        _tb.print_exc(file=_sys.stdout)
    _NS[_name] = _g
for _i, (_unit, _stmt) in enumerate(_CALLS):
    print(_MARK + "call " + str(_i), flush=True)
    try:
        exec(compile("print(" + _stmt + ")", "<call " + str(_i) + ">", "exec"), _NS[_unit])
    except BaseException:
        print(_MARK + "error " + str(_i), flush=True)
        _tb.print_exc(file=_sys.stdout)
    _sys.stdout.flush()
print(_MARK + "end", flush=True)
"""


def call_statement(call: ToolCall) -> str:
    """The call as Python source, e.g. ``get_city_population(city_name='Quellar')``."""
    if not call.name.isidentifier():
        raise ValueError(f"tool name {call.name!r} is not a Python identifier")
    for key in call.arguments:
        if not str(key).isidentifier():
            raise ValueError(f"argument name {key!r} of {call.name} is not a Python identifier")
    args = ", ".join(f"{k}={v!r}" for k, v in call.arguments.items())
    return f"{call.name}({args})"


def harness_script(units: Mapping[str, str], calls: Sequence[tuple[str, str]], mark: str) -> str:
    """The Python program that loads ``units`` and prints each (unit, statement) call."""
    return _HARNESS.format(
        units=repr(json.dumps(dict(units), ensure_ascii=False)),
        calls=repr(json.dumps([list(c) for c in calls], ensure_ascii=False)),
        mark=mark,
    )


def run_checks(
    sandbox: Sandbox,
    units: Mapping[str, str],
    checks: Sequence[GoldCheck],
    *,
    timeout_s: float | None = None,
) -> list[CheckResult]:
    """Run every check in one sandbox run and say which passed (exact substring rule)."""
    if not checks:
        return []
    for check in checks:
        if check.unit not in units:
            raise KeyError(f"check {check.key!r} names code unit {check.unit!r}, which is absent")
    mark = f"@@astra-{secrets.token_hex(8)}@@ "
    script = harness_script(units, [(c.unit, call_statement(c.call)) for c in checks], mark)
    result = sandbox.run(script, timeout_s=timeout_s)
    segments: dict[int, str] = {}
    errors: set[int] = set()
    load_errors: list[str] = []
    current: int | None = None
    lines: list[str] = []
    for line in result.stdout.splitlines():
        if line.startswith(mark):
            tag = line[len(mark) :]
            if current is not None:
                segments[current] = "\n".join(lines)
            lines, current = [], None
            if tag.startswith("call "):
                current = int(tag.split()[1])
            elif tag.startswith("error "):
                current = int(tag.split()[1])
                errors.add(current)
                lines = [segments.pop(current, "")]
            elif tag.startswith("load-error "):
                load_errors.append(tag.split(maxsplit=1)[1])
            continue
        lines.append(line)
    if current is not None:
        segments[current] = "\n".join(lines)
    run_problem = ""
    if result.limit:
        run_problem = f"sandbox limit hit: {result.limit}"
    elif result.exit_code != 0:
        run_problem = f"sandbox exit status {result.exit_code}: {result.stderr.strip()[-300:]}"
    out: list[CheckResult] = []
    for i, check in enumerate(checks):
        output = segments.get(i, "")
        if i not in segments:
            reason = run_problem or "the call produced no output section"
        elif check.unit in load_errors:
            reason = f"tool code of {check.unit} failed to load"
        elif i in errors:
            last = output.strip().splitlines()[-1] if output.strip() else "(no traceback)"
            reason = f"the call raised: {last}"
        elif not check.answer:
            reason = "empty gold answer"
        elif check.answer not in output:
            reason = f"output does not contain the gold answer {check.answer!r}"
        else:
            reason = ""
        out.append(CheckResult(check.key, check.call, check.answer, output, not reason, reason))
    return out


def arena_checks(arena: Arena) -> tuple[dict[str, str], list[GoldCheck]]:
    """Code units (one per tool) and one check per tool-needing sub-question with a call."""
    checks = [
        GoldCheck(sq.id, sq.call.name, sq.call, sq.answer)
        for sq in arena.subquestions
        if sq.needs_tool and sq.call is not None
    ]
    return dict(arena.tool_code), checks


def verify_arena(
    arena: Arena, sandbox: Sandbox, *, timeout_s: float | None = None
) -> list[CheckResult]:
    """Replay every gold call of ``arena`` against its final tool code in the sandbox; LLM-written
    code only in a sandbox that may run it (else ``UnisolatedSandboxRefused``, nothing run)."""
    if llm_written(arena):
        require_isolation(sandbox, what=f"the LLM-written tool code of arena {arena.id}")
    units, checks = arena_checks(arena)
    missing = [c for c in checks if c.unit not in units]
    results = [
        CheckResult(c.key, c.call, c.answer, "", False, f"no tool code for {c.unit!r}")
        for c in missing
    ]
    present = [c for c in checks if c.unit in units]
    return results + run_checks(sandbox, units, present, timeout_s=timeout_s)
