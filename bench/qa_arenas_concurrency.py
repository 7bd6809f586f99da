"""Arenas per minute of the ``qa-llm`` generator: concurrency 32 against concurrency 1.

An OpenAI-compatible server on loopback (``astra_llm.loopback_server``) answers every request
after a fixed latency, like an inference server whose every answer takes the same time. Its
answers are RECORDED-SHAPED, not a real model's: the scripted model of the offline example
(``examples/qa_arenas/answer_book.py``) answers each prompt as a capable model would. The rest
is what a user runs: ``astra_core.pipeline.run`` on a ``synth-arenas`` stage with the
``openai-compatible`` backend (no response cache: every request goes over HTTP) and every tool
verified in the bubblewrap sandbox (subprocess where ``bwrap`` is missing).

The same questions are run twice, with ``workers`` and the backend's ``max_concurrency`` both 1,
then both ``--concurrency``; the figure is the ratio of arenas written per minute. Target
(issue 21): at least 20x at concurrency 32. Also printed: LLM calls per kept arena, and the
verification pass rate per attempt (tool code versions accepted / versions run).

    python bench/qa_arenas_concurrency.py [--latency-ms 200] [--questions 48] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from astra_llm.loopback_server import LoopbackServer, ReceivedRequest, Reply, chat_completion

from astra_core.pipeline import run
from astra_core.records import Arena
from astra_core.store import RecordStore, read_manifest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "qa_arenas"))
from answer_book import AnswerBook, build_questions  # noqa: E402

TARGET = 20.0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def config_text(base_url: str, concurrency: int, sandbox: str) -> str:
    return f"""
[run]
name = "bench-qa-arenas-c{concurrency}"
seed = 0

[synth-arenas]
holdout_fraction = 0.0

[synth-arenas.generator]
name = "qa-llm"
questions = "questions.jsonl"
keep_top = 1.0
workers = {concurrency}
sandbox = "{sandbox}"

[synth-arenas.generator.llm]
name = "openai-compatible"
model = "scripted-capable-model"
base_url = "{base_url}"
api_key_env = "NO_KEY_HERE"
max_retries = 0
max_concurrency = {concurrency}
"""


def measure(
    work: Path, base_url: str, concurrency: int, sandbox: str, questions: Path
) -> dict[str, Any]:
    folder = work / f"c{concurrency}"
    folder.mkdir()
    concurrency = max(concurrency, 1)  # 0: the warm-up run, at 1
    shutil.copy(questions, folder / "questions.jsonl")
    (folder / "run.toml").write_text(config_text(base_url, concurrency, sandbox))
    start = time.perf_counter()
    run(folder / "run.toml", folder / "out", quiet=True)
    elapsed = time.perf_counter() - start
    stage = folder / "out" / "synth-arenas"
    manifest = read_manifest(stage) or {}
    if manifest.get("status") != "complete":
        raise RuntimeError(f"the stage at concurrency {concurrency} did not complete: {manifest}")
    metrics = manifest["metrics"]["qa-llm"]
    ids = sorted(a.id for a in RecordStore(stage, Arena).iter_records())
    written = len(ids)
    return {
        "concurrency": concurrency,
        "arenas": written,
        "dropped": manifest.get("dropped", {}),
        "seconds": elapsed,
        "arenas_per_min": written / elapsed * 60.0,
        "llm_calls": metrics["llm.total.calls"],
        "llm_calls_per_arena": metrics["llm.total.calls"] / max(written, 1),
        "tool_versions": metrics.get("tool_versions", 0),
        "tools_accepted": metrics.get("tools_accepted", 0),
        "verification_pass_rate": metrics.get("tools_accepted", 0)
        / max(metrics.get("tool_versions", 0), 1),
        "sandbox_runs": metrics.get("sandbox_runs", 0),
        "ids": ids,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=200.0, help="delay of every answer")
    parser.add_argument("--questions", type=int, default=48, help="questions in both runs")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--sandbox", default="bubblewrap" if shutil.which("bwrap") else "subprocess"
    )
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()

    specs = build_questions(seed=7, per_family=max(2, args.questions // 4 + 1))[: args.questions]
    if len(specs) < args.questions:
        raise SystemExit(f"the answer book has only {len(specs)} questions")
    book = AnswerBook(specs)
    latency_s = args.latency_ms / 1000.0

    def answer(request: ReceivedRequest) -> Reply:
        text = book.answer(request.body["messages"])
        body = chat_completion(text, prompt_tokens=len(str(request.body)) // 4)
        return Reply(body, delay_s=latency_s)

    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(answer) as server:
        work = Path(tmp)
        questions = work / "questions.jsonl"
        rows = [{"question": s["question"], "domain": s["domain"]} for s in specs]
        questions.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        # imports, plugin loading and the sandbox's first start, before either clock runs
        warm = work / "warm.jsonl"
        warm.write_text(questions.read_text().splitlines(keepends=True)[0])
        measure(work, server.base_url, 0, args.sandbox, warm)
        serial = measure(work, server.base_url, 1, args.sandbox, questions)
        parallel = measure(work, server.base_url, args.concurrency, args.sandbox, questions)
        max_in_flight = server.max_in_flight
    if serial["ids"] != parallel["ids"]:
        raise RuntimeError("the two runs wrote different arenas from the same questions")
    ratio = parallel["arenas_per_min"] / max(serial["arenas_per_min"], 1e-9)
    for row in (serial, parallel):
        del row["ids"]
    report = {
        "latency_ms": args.latency_ms,
        "questions": len(specs),
        "sandbox": args.sandbox,
        "serial": serial,
        "parallel": parallel,
        "max_in_flight": max_in_flight,
        "ratio": ratio,
        "ideal_ratio": float(args.concurrency),
        "target": TARGET,
        "meets_target": ratio >= TARGET,
        "machine": f"{cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
    }
    print(
        f"server latency {args.latency_ms:g} ms per answer, {len(specs)} questions, "
        f"sandbox {args.sandbox} ({report['machine']})"
    )
    print(
        f"{'concurrency':>11} {'arenas':>6} {'seconds':>8} {'arenas/min':>10} "
        f"{'calls/arena':>11} {'pass/attempt':>12}"
    )
    for row in (serial, parallel):
        print(
            f"{row['concurrency']:>11} {row['arenas']:>6} {row['seconds']:>8.1f} "
            f"{row['arenas_per_min']:>10.1f} {row['llm_calls_per_arena']:>11.1f} "
            f"{row['verification_pass_rate']:>12.2f}"
        )
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(
        f"ratio {ratio:.1f}x (ideal {args.concurrency}x, most requests in flight "
        f"{max_in_flight}; {verdict} the {TARGET:g}x target)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
