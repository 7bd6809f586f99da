"""Files of RL rows: reading JSONL, JSON or Parquet (as the hub serves the authors' release) with
the place of every row, and writing rows whole (a temporary file, then a rename)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from astra_core.errors import RecordError

ROW_SUFFIXES: tuple[str, ...] = (".jsonl", ".json", ".parquet")


def resolve_paths(spec: str | tuple[str, ...], config_file: str | None) -> list[Path]:
    """Relative paths start at the config file's folder (or the working directory)."""
    base = Path(config_file).resolve().parent if config_file else Path.cwd()
    out = []
    for item in (spec,) if isinstance(spec, str) else spec:
        path = Path(item).expanduser()
        out.append(path if path.is_absolute() else base / path)
    return out


def _parquet() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:  # pragma: no cover - pyarrow comes with `datasets`
        raise RecordError(
            "Parquet files need pyarrow (pip install pyarrow), or use JSONL"
        ) from None
    return pyarrow


def read_rows(path: Path) -> Iterator[tuple[str, Any]]:
    """``(location, row)`` for every row of a JSONL, JSON (a list, or one object) or Parquet
    file; the location is ``file:line``, ``file (item N)`` or ``file (row N)``."""
    if not path.is_file():
        raise RecordError(f"{path}: no such file of RL rows")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        table = _parquet().parquet.read_table(path)
        for number, row in enumerate(table.to_pylist(), 1):
            yield f"{path} (row {number})", row
        return
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RecordError(
                f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
            ) from None
        rows = data if isinstance(data, list) else [data]
        for number, row in enumerate(rows, 1):
            yield f"{path} (item {number})", row
        return
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RecordError(
                    f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
                ) from None
            yield f"{path}:{lineno}", row


def write_rows(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Write ``rows`` to ``path`` (JSONL, or JSON / Parquet by its suffix), replacing it whole
    only once every row is written; returns how many."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in ROW_SUFFIXES:
        raise RecordError(f"{target}: write rows to a {', '.join(ROW_SUFFIXES)} file")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    count = 0
    try:
        if suffix == ".parquet":
            pyarrow = _parquet()
            kept = list(rows)
            count = len(kept)
            pyarrow.parquet.write_table(pyarrow.Table.from_pylist(kept), tmp)
        else:
            with tmp.open("w", encoding="utf-8") as fh:
                if suffix == ".json":
                    kept = list(rows)
                    count = len(kept)
                    json.dump(kept, fh, ensure_ascii=False, indent=1)
                    fh.write("\n")
                else:
                    for row in rows:
                        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                        count += 1
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return count
