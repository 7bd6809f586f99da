"""The authors' released RL rows (ASTRA-RL-1k) in and out of a run.

* ``RlRowsGenerator``, the ``astra-rl-rows`` environment generator: a ``[synth-arenas]`` stage
  whose generator is ``{name = "astra-rl-rows", path = "rows.jsonl"}`` makes one arena per row,
  unchanged, so ``train-rl`` and ``eval`` play the released environments;
* ``import_rl_rows`` (``astra arenas import``): the same arenas written straight into a stage
  directory, split into train / held-out as ``synth-arenas`` splits;
* ``export_rl_rows`` (``astra arenas export``): a stage's arenas as rows, with the ``astra``
  field that makes the way back exact unless asked for the bare released shape.

Every arena made from a row is marked ``metadata[TOOL_CODE_ORIGIN] = LLM_WRITTEN``: the code in a
row's ``tool_dict`` was written by an LLM (or by whoever wrote the file), so it is untrusted and
runs only in an isolating sandbox. ``keep_origin`` keeps the origin an ``astra`` field records,
for re-importing one's own exports exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from astra_arenas.options import RlRowsOptions
from astra_arenas.rl_format import arena_from_rl_row, arena_to_rl_row
from astra_core.config import SynthArenasSection
from astra_core.context import StageContext
from astra_core.errors import AstraError, RecordError
from astra_core.options import ComponentSpec
from astra_core.records import Arena
from astra_core.registry import ComponentBuilder
from astra_core.row_files import config_paths, read_rows, write_rows
from astra_core.sandbox_policy import LLM_WRITTEN, TOOL_CODE_ORIGIN
from astra_core.stages import SynthArenasStage
from astra_core.store import (
    MANIFEST,
    RecordStore,
    read_manifest,
    read_records,
    write_json_atomic,
)

FORMAT = "astra-rl"
BAD_ROW = "bad-rl-row"


def untrusted(arena: Arena) -> Arena:
    """``arena`` marked as running LLM-written tool code (a new id when the mark is new)."""
    if arena.metadata.get(TOOL_CODE_ORIGIN) == LLM_WRITTEN:
        return arena
    metadata = {**arena.metadata, TOOL_CODE_ORIGIN: LLM_WRITTEN}
    return attrs.evolve(arena, metadata=metadata, id="")


def arenas_from_rows(
    paths: Sequence[Path],
    *,
    bad_row: Callable[[RecordError], None] | None = None,
    keep_origin: bool = False,
    limit: int | None = None,
) -> Iterator[Arena]:
    """One arena per row of ``paths``, in order. A row that cannot become one raises a
    ``RecordError`` naming its file and row, or goes to ``bad_row`` when given (a file that
    cannot be read at all always raises)."""
    read = 0
    for path in paths:
        for where, row in read_rows(path):
            if limit is not None and read >= limit:
                return
            read += 1
            try:
                if not isinstance(row, Mapping):
                    raise RecordError(
                        f"{where}: an RL row must be a JSON object, got {type(row).__name__}"
                    )
                arena = arena_from_rl_row(row, where=where)
            except RecordError as exc:
                if bad_row is None:
                    raise
                bad_row(exc)
                continue
            yield arena if keep_origin else untrusted(arena)


class RlRowsGenerator:
    """The ``astra-rl-rows`` environment generator (see the module docstring)."""

    def __init__(self, options: RlRowsOptions, builder: ComponentBuilder) -> None:
        self.options = options
        self.paths = config_paths(options.path, builder.file)

    def generate(self, ctx: StageContext) -> Iterator[Arena]:
        def drop(exc: RecordError) -> None:
            ctx.drop(BAD_ROW, None, str(exc))

        bad = drop if self.options.on_bad_row == "drop" else None
        yield from arenas_from_rows(self.paths, bad_row=bad)


@attrs.frozen
class RowImport:
    """What ``import_rl_rows`` did."""

    read: int
    written: int
    existing: int
    bad_rows: int
    out_dir: str


def import_rl_rows(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    holdout_fraction: float = 0.2,
    skip_bad: bool = False,
    keep_origin: bool = False,
    limit: int | None = None,
) -> RowImport:
    """Write the arenas of ``paths`` into the stage directory ``out_dir`` (``data-*.jsonl``,
    ``dropped.jsonl``, ``manifest.json``), split by ``holdout_fraction`` as ``synth-arenas``
    splits (an exported arena keeps its side). Re-running adds only arenas not there yet; a bad
    row stops the import with an error naming it (after the rows before it are written), or is
    logged in ``dropped.jsonl`` with ``skip_bad``."""
    sources = [Path(p) for p in paths]
    out = Path(out_dir)
    section = SynthArenasSection(
        generator=ComponentSpec("astra-rl-rows"), holdout_fraction=holdout_fraction
    )
    splitter = SynthArenasStage(section)
    read = bad = 0
    error: str | None = None
    previous = read_manifest(out)
    store = RecordStore(out, Arena).open()
    existing = len(store)

    def skip(exc: RecordError) -> None:
        nonlocal bad
        bad += 1
        store.drop(BAD_ROW, None, str(exc))

    def counted(arenas: Iterable[Arena]) -> Iterator[Arena]:
        nonlocal read
        for arena in arenas:
            read += 1
            yield arena

    rows = arenas_from_rows(
        sources, bad_row=skip if skip_bad else None, keep_origin=keep_origin, limit=limit
    )
    try:
        for arena in splitter.split(counted(rows)):
            store.write(arena)
    except AstraError as exc:
        error = str(exc)
        raise
    finally:
        store.close()
        summary = RowImport(read + bad, store.written, existing, bad, str(out))
        entry = {
            "format": FORMAT,
            "status": "failed" if error else "complete",
            "sources": [str(p.resolve()) for p in sources],
            "options": {
                "holdout_fraction": holdout_fraction,
                "skip_bad": skip_bad,
                "keep_origin": keep_origin,
                "limit": limit,
            },
            "counts": {
                "read": summary.read,
                "written": summary.written,
                "bad_rows": bad,
                "total": len(store),
            },
            **({"error": error} if error else {}),
        }
        # A directory another stage wrote keeps its manifest; the import is added to it.
        manifest = dict(previous) if previous else {"stage": "import-arenas", "format": FORMAT}
        manifest["imports"] = [*manifest.get("imports", []), entry]
        if not previous or previous.get("stage") == "import-arenas":
            manifest["status"] = entry["status"]
            manifest["counts"] = {"total": len(store)}
        write_json_atomic(out / MANIFEST, manifest)
    return summary


def read_arenas(source: str | Path) -> Iterator[Arena]:
    """The arenas of a stage directory (its ``data-*.jsonl`` shards) or of one JSONL file of
    arena records."""
    return read_records(source, Arena)


@attrs.frozen
class RowExport:
    """What ``export_rl_rows`` did: rows written, arenas left out and why (the first)."""

    written: int
    skipped: int
    first_skipped: str | None
    out_path: str


def export_rl_rows(
    source: str | Path,
    out_path: str | Path,
    *,
    with_astra: bool = True,
    split: str = "all",
) -> RowExport:
    """Write the arenas of ``source`` (``split``: all, train or holdout) as released rows to
    ``out_path``. An arena the format cannot carry (a gold tool with no code, e.g. an arena
    whose tools another plugin runs) is left out and counted."""
    skipped = 0
    first: str | None = None

    def rows() -> Iterator[dict[str, Any]]:
        nonlocal skipped, first
        for arena in read_arenas(source):
            if (split == "train" and arena.held_out) or (split == "holdout" and not arena.held_out):
                continue
            row = arena_to_rl_row(arena, with_astra=with_astra)
            try:
                arena_from_rl_row(row, where=f"arena {arena.id}")
            except RecordError as exc:
                skipped += 1
                first = first or str(exc)
                continue
            yield row

    written = write_rows(rows(), out_path)
    return RowExport(written, skipped, first, str(out_path))
