"""The ``qa_source`` steps: where the questions (or the knowledge to write them from) come from.

* ``qa-file`` (question-conditional): a file of questions, with or without answers, context and
  domain per row (JSONL, JSON, CSV, Parquet, or a directory ``datasets.load_dataset`` reads).
* ``knowledge-corpus`` (unconditional): a domain list (``domains.jsonl``) with knowledge
  corpora (``context.jsonl`` beside it): ``per_domain`` items per domain, each with one context
  of the domain and the hop budget.

A path is relative to the run config's directory. A row without the question field is an error
that names the file, the row and the fields the row has.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from astra_core import row_files
from astra_core.arena_synthesis import QAItem
from astra_core.errors import ConfigError, RecordError
from astra_qa_arenas.options import KnowledgeCorpusOptions, QAFileOptions

if TYPE_CHECKING:
    from astra_core.context import StageContext
    from astra_core.registry import ComponentBuilder


def resolve(path: str, config_file: str | None) -> Path:
    """``path`` relative to the config file's directory (the working directory without one)."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute():
        return candidate
    base = Path(config_file).resolve().parent if config_file else Path.cwd()
    return base / candidate


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN from a table
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def read_rows(path: Path, file_format: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, row) for every row of ``path`` (``astra_core.row_files``: JSONL, JSON, CSV,
    Parquet or a dataset directory); a file that cannot be read is a config error."""
    try:
        for where, row in row_files.read_rows(path, file_format=file_format, what="questions"):
            if not isinstance(row, Mapping):
                raise ConfigError(f"{where}: expected an object with a question, got {row!r:.80}")
            yield where, row
    except RecordError as exc:
        raise ConfigError(str(exc)) from None


class QAFileSource:
    """Question-conditional items from a file; see the module docstring."""

    step = "qa_source"

    def __init__(self, options: QAFileOptions, builder: ComponentBuilder) -> None:
        if not options.questions:
            raise ConfigError("qa-file needs the questions option (a file or a directory)")
        self.options = options
        self.path = resolve(options.questions, builder.file)

    def load(self, ctx: StageContext) -> Iterator[QAItem]:
        o = self.options
        for count, (where, row) in enumerate(read_rows(self.path, o.file_format)):
            if o.max_items is not None and count >= o.max_items:
                return
            question = _text(row.get(o.question_field)).strip()
            if not question:
                fields = ", ".join(sorted(map(str, row))) or "none"
                raise ConfigError(
                    f"{where}: no {o.question_field!r} field (question_field); the row has: "
                    f"{fields}"
                )
            yield QAItem(
                question=question,
                answer=_text(row.get(o.answer_field)).strip(),
                context=_text(row.get(o.context_field)).strip(),
                domain=_text(row.get(o.domain_field)).strip(),
                min_hops=1,
                max_hops=o.max_hops,
                origin=where,
            )


class KnowledgeCorpusSource:
    """Unconditional items from domains and their knowledge corpora; see the module docstring."""

    step = "qa_source"

    def __init__(self, options: KnowledgeCorpusOptions, builder: ComponentBuilder) -> None:
        if not options.domains:
            raise ConfigError("knowledge-corpus needs the domains option (a domains.jsonl)")
        self.options = options
        self.domains = resolve(options.domains, builder.file)
        beside = self.domains.parent / "context.jsonl"
        if options.contexts:
            self.contexts: Path | None = resolve(options.contexts, builder.file)
        else:
            self.contexts = beside if beside.is_file() else None

    def load(self, ctx: StageContext) -> Iterator[QAItem]:
        o = self.options
        corpora: dict[str, list[str]] = {}
        if self.contexts is not None:
            for _, row in read_rows(self.contexts, "jsonl"):
                text = _text(row.get("knowledge_corpus")).strip()
                if text:
                    corpora.setdefault(_text(row.get("domain")).strip(), []).append(text)
        produced = 0
        for where, row in read_rows(self.domains, "jsonl"):
            domain = _text(row.get("domain")).strip()
            if not domain:
                raise ConfigError(f"{where}: no 'domain' field")
            own = _text(row.get("knowledge_corpus")).strip()
            # a row's own corpus first (a context.jsonl given as domains: one item per row),
            # else the contexts of its domain
            pool = [own] if own else (corpora.get(domain) or [""])
            rng = random.Random(f"knowledge-corpus:{ctx.seed}:{domain}")
            hops = list(range(o.min_hops, o.max_hops + 1))
            for index in range(o.per_domain):
                if o.max_items is not None and produced >= o.max_items:
                    return
                produced += 1
                # the hop budget cycles over min..max, as the authors' base mode loops it
                budget = hops[index % len(hops)]
                yield QAItem(
                    context=rng.choice(pool),
                    domain=domain,
                    min_hops=budget,
                    max_hops=budget,
                    origin=f"{where}#{index}",
                )
