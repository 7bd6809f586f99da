"""Resumable JSONL datasets.

A stage writes ``data-00000.jsonl``, ``data-00001.jsonl``, ... (one record per line), a
``dropped.jsonl`` log (one line per dropped candidate, with its reason) and ``manifest.json``.
Every line is written whole and flushed before the next record is produced, so a process killed
at any moment leaves at most one half-written final line; opening the store again cuts that
line off, reloads the ids already written and the stage skips them: nothing lost, nothing
duplicated. The manifest is replaced atomically (write to a temporary file, then rename).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

from astra_core.errors import RecordError, StoreError
from astra_core.records import Record

__all__ = [
    "DROPPED",
    "MANIFEST",
    "RecordStore",
    "merge_stores",
    "read_manifest",
    "read_records",
    "shard_paths",
    "write_json_atomic",
]

R = TypeVar("R", bound=Record)

MANIFEST = "manifest.json"
DROPPED = "dropped.jsonl"
SHARD_PATTERN = "data-{:05d}.jsonl"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename: never half-written."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _repair_tail(path: Path) -> int:
    """Cut a half-written last line off ``path``; return how many bytes were removed."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as fh:
        data = fh.read()
        end = len(data)
        if data.endswith(b"\n"):
            last_start = data.rfind(b"\n", 0, end - 1) + 1
            try:
                json.loads(data[last_start:end])
                return 0
            except ValueError:
                cut = last_start  # a complete line that is not JSON: a torn write, drop it
        else:
            cut = data.rfind(b"\n") + 1
        fh.truncate(cut)
        return end - cut


def shard_paths(directory: Path) -> list[Path]:
    """A stage directory's ``data-NNNNN.jsonl`` shards, in order."""
    return sorted(directory.glob("data-*.jsonl"))


class RecordStore:
    """The dataset of one stage in ``directory``, holding records of ``record_cls``."""

    def __init__(
        self, directory: str | Path, record_cls: type[Record], *, shard_size: int = 1000
    ) -> None:
        self.directory = Path(directory)
        self.record_cls = record_cls
        self.shard_size = shard_size
        self._ids: set[str] = set()
        self._dropped: dict[str, str] = {}
        self._anonymous_drops: Counter[str] = Counter()
        self._fh: Any = None
        self._drop_fh: Any = None
        self._shard_index = 0
        self._shard_count = 0
        self.written = 0  # in this attempt
        self.skipped = 0  # already present from an earlier attempt
        self.repaired_bytes = 0

    # -- opening and resume --------------------------------------------------------------------

    def open(self) -> RecordStore:
        self.directory.mkdir(parents=True, exist_ok=True)
        shards = shard_paths(self.directory)
        for path in shards:
            self.repaired_bytes += _repair_tail(path)
            with path.open("r", encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        record_id = json.loads(line)["id"]
                    except (ValueError, KeyError, TypeError) as exc:
                        raise StoreError(f"{path}:{lineno}: not a record line ({exc})") from exc
                    self._ids.add(record_id)
        drop_log = self.directory / DROPPED
        if drop_log.exists():
            self.repaired_bytes += _repair_tail(drop_log)
            with drop_log.open("r", encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        entry = json.loads(line)
                        if entry.get("id"):
                            self._dropped[entry["id"]] = entry["reason"]
                        else:
                            self._anonymous_drops[entry["reason"]] += 1
        if shards:
            self._shard_index = int(shards[-1].stem.split("-")[1])
            with shards[-1].open("rb") as fh:
                self._shard_count = sum(1 for _ in fh)
        return self

    def __enter__(self) -> RecordStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------

    def seen(self, record_id: str) -> bool:
        return record_id in self._ids or record_id in self._dropped

    def __contains__(self, record_id: str) -> bool:
        return record_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def write(self, record: Record) -> bool:
        """Append ``record`` unless its id is already stored; return whether it was written."""
        if not isinstance(record, self.record_cls):
            got = type(record).__name__
            raise RecordError(
                f"{self.directory}: expected a {self.record_cls.kind} record, got {got}"
            )
        if record.id in self._ids:
            self.skipped += 1
            return False
        line = record.to_json()
        if "\n" in line:  # json.dumps never emits raw newlines; this guards custom records
            raise RecordError(f"record {record.id} serialises to more than one line")
        if self._fh is None or self._shard_count >= self.shard_size:
            self._next_shard()
        self._fh.write(line + "\n")
        self._fh.flush()
        self._shard_count += 1
        self._ids.add(record.id)
        self._dropped.pop(record.id, None)
        self.written += 1
        return True

    def _next_shard(self) -> None:
        if self._fh is not None:
            self._close_fh()
            self._shard_index += 1
            self._shard_count = 0
        elif self._shard_count >= self.shard_size:
            self._shard_index += 1
            self._shard_count = 0
        path = self.directory / SHARD_PATTERN.format(self._shard_index)
        self._fh = path.open("a", encoding="utf-8")

    def drop(self, reason: str, record_id: str | None = None, detail: str = "") -> None:
        if self._drop_fh is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._drop_fh = (self.directory / DROPPED).open("a", encoding="utf-8")
        entry = {"id": record_id, "reason": reason, "detail": detail[:500]}
        self._drop_fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._drop_fh.flush()
        if record_id:
            self._dropped[record_id] = reason
        else:
            self._anonymous_drops[reason] += 1

    def dropped_counts(self) -> dict[str, int]:
        counts: Counter[str] = Counter(
            reason for rid, reason in self._dropped.items() if rid not in self._ids
        )
        counts.update(self._anonymous_drops)
        return dict(sorted(counts.items()))

    def _close_fh(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None

    def close(self) -> None:
        if self._fh is not None:
            self._close_fh()
        if self._drop_fh is not None:
            self._drop_fh.flush()
            os.fsync(self._drop_fh.fileno())
            self._drop_fh.close()
            self._drop_fh = None

    # -- reading -------------------------------------------------------------------------------

    def iter_records(self) -> Iterator[Record]:
        """Every record in shard order; a malformed line is an error naming file and line."""
        for path in shard_paths(self.directory):
            with path.open("r", encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    if not line.endswith("\n"):
                        break  # a torn final line of a run that is still going or was killed
                    try:
                        yield self.record_cls.from_json(line)
                    except RecordError as exc:
                        raise RecordError(f"{path}:{lineno}: {exc}") from exc


def read_records(source: str | Path, record_cls: type[R]) -> Iterator[R]:
    """The records of a stage directory (its ``data-*.jsonl`` shards, as ``astra run`` writes
    them) or of one JSONL file of records; a ``RecordError`` names the path, or the line of a
    record that does not read."""
    path = Path(source)
    what = f"{record_cls.kind}s"
    if path.is_dir():
        if not shard_paths(path):
            raise RecordError(
                f"{path}: no data-*.jsonl shards here; give a stage directory of {what} (such as "
                f"runs/NAME/<stage>), or a JSONL file of {what}"
            )
        for record in RecordStore(path, record_cls).iter_records():
            yield cast(R, record)
        return
    if not path.is_file():
        raise RecordError(f"{path}: no such stage directory or file ({what})")
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield record_cls.from_json(line)
                except RecordError as exc:
                    raise RecordError(f"{path}:{lineno}: {exc}") from exc


def read_manifest(directory: str | Path) -> dict[str, Any] | None:
    """A stage directory's ``manifest.json`` as a dict (``None`` when there is none)."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def merge_stores(sources: list[Path], target: Path, record_cls: type[Record]) -> int:
    """Merge the datasets of several shards (``--shard i/n`` runs) without duplicates."""
    written = 0
    with RecordStore(target, record_cls) as out:
        for src in sources:
            for record in RecordStore(src, record_cls).iter_records():
                written += out.write(record)
    return written
