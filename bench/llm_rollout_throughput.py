"""Rollout throughput of the ``openai-compatible`` backend: concurrency 32 against concurrency 1.

A local OpenAI-compatible server (``astra_llm.loopback_server``, in its own process) answers every
chat request after a fixed latency, like an inference server whose every answer takes the same
time. The requests are agent turns of realistic size (a system prompt, 8 tool schemas, a
6-message conversation) and the answer is a tool call. The response cache is off: every request
goes over HTTP. Target (issue 3): concurrency 32 at least 20x the throughput of concurrency 1.

    python bench/llm_rollout_throughput.py [--latency-ms 50] [--requests 512] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

from astra_llm.openai_http import OpenAICompatibleBackend
from astra_llm.options import OpenAICompatibleOptions

from astra_core.protocols import ChatResponse


def agent_turn(i: int) -> dict[str, Any]:
    tools = [
        {
            "type": "function",
            "function": {
                "name": f"tool_{k}",
                "description": f"Look up field {k} of a record by its id; returns JSON.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "record_id": {"type": "string", "description": "id of the record"},
                        "verbose": {"type": "boolean"},
                    },
                    "required": ["record_id"],
                },
            },
        }
        for k in range(8)
    ]
    messages = [
        {"role": "system", "content": "You are an agent. Use the tools to answer. " * 5},
        {"role": "user", "content": f"Question {i}: what is field 3 of the record linked to A{i}?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {"name": "tool_0", "arguments": json.dumps({"record_id": f"A{i}"})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": f"call_{i}", "content": json.dumps({"link": f"B{i}"})},
    ]
    return {"messages": messages, "tools": tools}


def start_server(latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "astra_llm.loopback_server", "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise RuntimeError(f"the loopback server did not start (said {url!r})")
    return proc, url


def measure(url: str, concurrency: int, n: int) -> dict[str, float]:
    options = OpenAICompatibleOptions(
        model="bench", base_url=url, max_concurrency=concurrency, api_key_env=None
    )
    with OpenAICompatibleBackend(options) as llm:
        llm.chat_many([agent_turn(-1)] * min(concurrency, 4))  # open connections, warm up
        requests = [agent_turn(i) for i in range(n)]
        start = time.perf_counter()
        results = llm.chat_many(requests)
        elapsed = time.perf_counter() - start
    failed = sum(not isinstance(r, ChatResponse) for r in results)
    if failed:
        raise RuntimeError(f"{failed} of {n} requests failed at concurrency {concurrency}")
    return {
        "concurrency": concurrency,
        "requests": n,
        "seconds": elapsed,
        "requests_per_s": n / elapsed,
        "mean_latency_ms": elapsed / n * concurrency * 1000.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--requests", type=int, default=512, help="requests at concurrency 32")
    parser.add_argument("--serial-requests", type=int, default=64, help="requests at concurrency 1")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()

    proc, url = start_server(args.latency_ms)
    try:
        serial = measure(url, 1, args.serial_requests)
        parallel = measure(url, args.concurrency, args.requests)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    ratio = parallel["requests_per_s"] / serial["requests_per_s"]
    report = {
        "latency_ms": args.latency_ms,
        "serial": serial,
        "parallel": parallel,
        "speedup": ratio,
        "ideal_speedup": float(args.concurrency),
        "target": 20.0,
        "meets_target": ratio >= 20.0,
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        ),
    }
    print(f"server latency {args.latency_ms:g} ms per request ({report['machine']})")
    print(f"{'concurrency':>11} {'requests':>8} {'seconds':>8} {'req/s':>8} {'ms/req':>7}")
    for row in (serial, parallel):
        print(
            f"{row['concurrency']:>11} {row['requests']:>8} {row['seconds']:>8.2f} "
            f"{row['requests_per_s']:>8.1f} {row['mean_latency_ms']:>7.1f}"
        )
    verdict = "meets" if ratio >= 20.0 else "MISSES"
    print(f"speedup {ratio:.1f}x (ideal {args.concurrency}x; {verdict} the 20x target)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
    return 0 if ratio >= 20.0 else 1


if __name__ == "__main__":
    sys.exit(main())
