"""Files of rows a user brings or takes away (questions, the authors' released RL and SFT rows):
JSONL, JSON, CSV or Parquet, or a directory ``datasets`` reads, each row with the place it came
from, and rows written whole (a temporary file, then a rename)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from astra_core.errors import RecordError

__all__ = [
    "ROW_FORMATS",
    "ROW_SUFFIXES",
    "config_paths",
    "read_rows",
    "replaced_whole",
    "row_format",
    "write_rows",
]

ROW_SUFFIXES: tuple[str, ...] = (".jsonl", ".json", ".parquet")
ROW_FORMATS: tuple[str, ...] = ("jsonl", "json", "csv", "parquet", "dataset")
_BY_SUFFIX = {".jsonl": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def config_paths(spec: str | tuple[str, ...], config_file: str | None) -> list[Path]:
    """The file(s) a component option names (one path or several): relative paths start at the
    config file's folder (or the working directory without one)."""
    base = Path(config_file).resolve().parent if config_file else Path.cwd()
    out = []
    for item in (spec,) if isinstance(spec, str) else spec:
        path = Path(item).expanduser()
        out.append(path if path.is_absolute() else base / path)
    return out


def row_format(path: Path, file_format: str = "auto") -> str:
    """One of ``ROW_FORMATS``: ``file_format``, or with ``"auto"`` what the path's suffix says
    (a directory: ``dataset``)."""
    if file_format != "auto":
        if file_format not in ROW_FORMATS:
            raise RecordError(
                f"{path}: unknown file format {file_format!r} (one of {', '.join(ROW_FORMATS)})"
            )
        return file_format
    if path.is_dir():
        return "dataset"
    found = _BY_SUFFIX.get(path.suffix.lower())
    if found is None:
        raise RecordError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r}; name it "
            f"({', '.join(ROW_FORMATS)})"
        )
    return found


def read_rows(
    path: str | Path, *, file_format: str = "auto", what: str = "rows"
) -> Iterator[tuple[str, Any]]:
    """``(location, row)`` for every row of ``path``: ``file:line`` (JSONL, CSV), ``file (item
    N)`` (a JSON list, or one object; ``{"data": [...]}`` as ``datasets`` writes it) or ``file
    (row N)`` (Parquet, a dataset directory). A file that is missing or not valid JSON is a
    ``RecordError`` naming it, and ``what`` it was to hold."""
    source = Path(path)
    if not source.exists():
        raise RecordError(f"{source}: no such file or directory ({what})")
    fmt = row_format(source, file_format)
    if fmt == "jsonl":
        with source.open("r", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    yield f"{source}:{lineno}", _json(line, f"{source}:{lineno}", lines=False)
    elif fmt == "json":
        data = _json(source.read_text(encoding="utf-8"), str(source), lines=True)
        if isinstance(data, Mapping) and len(data) == 1:
            (only,) = data.values()
            data = only if isinstance(only, list) else data
        for number, row in enumerate(data if isinstance(data, list) else [data], 1):
            yield f"{source} (item {number})", row
    elif fmt == "csv":
        with source.open("r", encoding="utf-8", newline="") as fh:
            for lineno, row in enumerate(csv.DictReader(fh), 2):
                yield f"{source}:{lineno}", row
    elif fmt == "parquet":
        table = _pyarrow(source).parquet.read_table(source)
        for number, row in enumerate(table.to_pylist(), 1):
            yield f"{source} (row {number})", row
    else:
        for number, row in enumerate(_dataset(source), 1):
            yield f"{source} (row {number})", row


@contextmanager
def replaced_whole(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` for the block to write (and fsync); it replaces
    ``path`` in one rename when the block ends, and is removed if the block raises, so a
    reader never sees half a file and a failed write leaves the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_rows(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Write ``rows`` to ``path`` (JSONL, or JSON / Parquet by its suffix), replacing it whole
    only once every row is written; returns how many."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in ROW_SUFFIXES:
        raise RecordError(f"{target}: write rows to a {', '.join(ROW_SUFFIXES)} file")
    count = 0
    with replaced_whole(target) as tmp:
        if suffix == ".parquet":
            pyarrow = _pyarrow(target)
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
    return count


def _json(text: str, where: str, *, lines: bool) -> Any:
    """``lines``: ``where`` is a whole file, so the error's line goes with it."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        line = f":{exc.lineno}" if lines else ""
        raise RecordError(
            f"{where}{line}: not valid JSON ({exc.msg} at column {exc.colno})"
        ) from None


def _pyarrow(path: Path) -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:  # pyarrow comes with `datasets`
        raise RecordError(
            f"{path}: Parquet needs pyarrow (pip install pyarrow), or use JSONL"
        ) from None
    return pyarrow


def _dataset(path: Path) -> Iterable[Any]:
    try:
        import datasets
    except ImportError:
        raise RecordError(
            f"{path}: a dataset directory needs the datasets package (pip install datasets)"
        ) from None
    try:
        table = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError):
        table = datasets.load_dataset(str(path), split="train")
    if isinstance(table, datasets.DatasetDict):
        table = table[next(iter(table))]
    return table
