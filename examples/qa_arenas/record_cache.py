"""Write the question file and the response cache of examples/arenas-from-questions.toml.

RECORDED / SYNTHETIC: the answers come from the scripted model in ``answer_book.py`` (served
over loopback HTTP by ``astra_llm.loopback_server``), not from a real LLM. The pipeline itself
runs for real while recording: every tool the answers hold is verified in the sandbox.

    python examples/qa_arenas/record_cache.py          # rewrites questions.jsonl and cache/
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from astra_llm.loopback_server import LoopbackServer, ReceivedRequest, Reply, chat_completion

from astra_core.pipeline import run

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from answer_book import AnswerBook, build_questions  # noqa: E402

CONFIG = HERE.parent / "arenas-from-questions.toml"


def main() -> None:
    specs = build_questions(seed=7, per_family=10)
    rows = []
    for index, spec in enumerate(specs):
        row = {"question": spec["question"], "domain": spec["domain"]}
        if index % 2:  # half the rows come with their answer
            row["answer"] = spec["answer"]
        rows.append(json.dumps(row, ensure_ascii=False))
    (HERE / "questions.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    shutil.rmtree(HERE / "cache", ignore_errors=True)
    book = AnswerBook(specs)

    def answer(request: ReceivedRequest) -> Reply:
        text = book.answer(request.body["messages"])
        return Reply(chat_completion(text, prompt_tokens=len(str(request.body)) // 4))

    with LoopbackServer(answer) as server, tempfile.TemporaryDirectory() as out:
        text = CONFIG.read_text(encoding="utf-8")
        text = text.replace(
            'base_url = "http://127.0.0.1:8000/v1"', f'base_url = "{server.base_url}"'
        )
        text = text.replace('cache_mode = "replay"', 'cache_mode = "use"')
        recording = HERE.parent / ".record-arenas-from-questions.toml"  # {config_dir} = examples/
        recording.write_text(text, encoding="utf-8")
        try:
            report = run(recording, out, quiet=True)
        finally:
            recording.unlink()
        dropped = Path(out) / "synth-arenas" / "dropped.jsonl"
        for line in dropped.read_text().splitlines() if dropped.exists() else ():
            print("dropped:", line)
        print(f"{len(specs)} questions, {server.count} answers recorded; {report}")


if __name__ == "__main__":
    main()
