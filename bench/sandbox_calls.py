"""Sandboxed tool calls per second: persistent worker vs in-process vs a process per call.

Three ways to run the same small stateful tool (a shop inventory: look up, update, answer as
JSON), each call's result rendered as the text an agent would see:

* ``in_process``: the function called directly in this interpreter (the upper limit, no
  isolation at all);
* ``session``: the persistent worker of ``sandbox.session()`` (one sandboxed process per
  episode; each call is a JSON request/answer over its pipes), for each backend measured;
* ``fresh_process``: ``sandbox.run()`` per call, i.e. a new sandboxed interpreter that loads the
  tool code and makes one call (what a sandbox without sessions costs).

Usage::

    python bench/sandbox_calls.py [--calls 2000] [--fresh-calls 40] [--json]
                                  [--backends bubblewrap,subprocess]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from typing import Any

from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.registry import ComponentBuilder

TOOL = """
STOCK = {f"item{i}": i for i in range(100)}

def restock(item: str, amount: int):
    STOCK[item] = STOCK.get(item, 0) + amount
    return {"item": item, "stock": STOCK[item]}
"""


def _args(i: int) -> dict[str, Any]:
    return {"item": f"item{i % 100}", "amount": 1}


def bench_in_process(calls: int) -> float:
    namespace: dict[str, Any] = {}
    exec(compile(TOOL, "<tool>", "exec"), namespace)
    fn = namespace["restock"]
    start = time.perf_counter()
    for i in range(calls):
        json.dumps(fn(**_args(i)))
    return calls / (time.perf_counter() - start)


def bench_session(sandbox: Any, calls: int) -> tuple[float, float]:
    """(calls per second, seconds to start the worker and load the tool)."""
    start = time.perf_counter()
    with sandbox.session() as session:
        assert session.load(TOOL).error is None
        startup = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(calls):
            outcome = session.call("restock", _args(i))
            assert outcome.error is None, outcome
        rate = calls / (time.perf_counter() - start)
    return rate, startup


def bench_fresh(sandbox: Any, calls: int) -> float:
    start = time.perf_counter()
    for i in range(calls):
        code = f"{TOOL}\nimport json\nprint(json.dumps(restock(**{_args(i)!r})))\n"
        result = sandbox.run(code)
        assert result.ok, result
    return calls / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per session measurement")
    parser.add_argument("--fresh-calls", type=int, default=40, help="calls with a process each")
    parser.add_argument(
        "--backends", default="bubblewrap,subprocess", help="sandbox components, comma-separated"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    builder = ComponentBuilder(load_plugins().registry)
    backends = [b for b in args.backends.split(",") if b]
    if "bubblewrap" in backends and shutil.which("bwrap") is None:
        backends.remove("bubblewrap")
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "in_process_calls_per_s": round(bench_in_process(max(args.calls, 100_000))),
    }
    for name in backends:
        sandbox = builder.build("sandbox", ComponentSpec(name, {"timeout_s": 30.0}))
        bench_fresh(sandbox, 2)  # warm the page cache
        session_rate, startup = bench_session(sandbox, args.calls)
        fresh_rate = bench_fresh(sandbox, args.fresh_calls)
        result[name] = {
            "session_calls_per_s": round(session_rate),
            "session_start_s": round(startup, 4),
            "fresh_process_calls_per_s": round(fresh_rate, 1),
            "session_vs_fresh": round(session_rate / fresh_rate, 1),
            "in_process_vs_session": round(result["in_process_calls_per_s"] / session_rate, 1),
        }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(result["machine"])
    print(f"in-process call (the limit):    {result['in_process_calls_per_s']:>10,} calls/s")
    for name in backends:
        r = result[name]
        print(f"{name}:")
        print(
            f"  persistent worker (session):  {r['session_calls_per_s']:>10,} calls/s "
            f"(start + load: {r['session_start_s'] * 1000:.0f} ms)"
        )
        print(f"  fresh process per call:       {r['fresh_process_calls_per_s']:>10,} calls/s")
        print(f"  session / fresh process:      {r['session_vs_fresh']:>10}x faster")
        print(f"  in-process / session:         {r['in_process_vs_session']:>10}x faster")


if __name__ == "__main__":
    main()
