from __future__ import annotations

import json

import pytest

from astra_core.errors import RecordError, StoreError
from astra_core.records import ToolChain, ToolServer
from astra_core.store import RecordStore, merge_stores


def chains(n: int, start: int = 0) -> list[ToolChain]:
    return [ToolChain(server_id="s", tools=(f"a{i}", f"b{i}")) for i in range(start, start + n)]


def test_write_skip_and_reopen(tmp_path):
    with RecordStore(tmp_path, ToolChain, shard_size=4) as store:
        assert all(store.write(c) for c in chains(10))
        assert not store.write(chains(1)[0])
        assert store.skipped == 1
    assert sorted(p.name for p in tmp_path.glob("data-*.jsonl")) == [
        "data-00000.jsonl",
        "data-00001.jsonl",
        "data-00002.jsonl",
    ]
    with RecordStore(tmp_path, ToolChain, shard_size=4) as store:
        assert len(store) == 10
        written = [store.write(c) for c in chains(12)]
        assert written.count(True) == 2
    again = list(RecordStore(tmp_path, ToolChain).iter_records())
    assert [c.tools for c in again] == [c.tools for c in chains(12)]


def test_half_written_line_is_cut_on_resume(tmp_path):
    with RecordStore(tmp_path, ToolChain) as store:
        for c in chains(3):
            store.write(c)
    shard = tmp_path / "data-00000.jsonl"
    line = chains(1, start=3)[0].to_json()
    with shard.open("a") as fh:
        fh.write(line[: len(line) // 2])  # what a SIGKILL mid-write leaves
    # Readers never see a torn line.
    assert len(list(RecordStore(tmp_path, ToolChain).iter_records())) == 3
    store = RecordStore(tmp_path, ToolChain).open()
    assert store.repaired_bytes == len(line) // 2
    assert len(store) == 3
    for c in chains(5):
        store.write(c)
    store.close()
    lines = shard.read_text().splitlines()
    assert len(lines) == 5 and len(set(lines)) == 5
    assert all(json.loads(x)["id"] for x in lines)


def test_drops_are_logged_and_counted_once(tmp_path):
    with RecordStore(tmp_path, ToolChain) as store:
        store.drop("too short", "x1")
        store.drop("too short", "x1")
        store.drop("bad schema", "x2")
        store.drop("server has fewer than 3 tools")
        assert store.seen("x1")
    store = RecordStore(tmp_path, ToolChain).open()
    assert store.dropped_counts() == {
        "bad schema": 1,
        "server has fewer than 3 tools": 1,
        "too short": 1,
    }
    store.close()


def test_wrong_record_type_and_damaged_shards_are_clear_errors(tmp_path):
    with (
        RecordStore(tmp_path, ToolChain) as store,
        pytest.raises(RecordError, match="expected a tool_chain"),
    ):
        store.write(ToolServer(title="x", tools=()))
    (tmp_path / "data-00000.jsonl").write_text('{"no_id": 1}\n')
    with pytest.raises(StoreError, match=r"data-00000.jsonl:1"):
        RecordStore(tmp_path, ToolChain).open()


def test_merge_shards_without_duplicates(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    with RecordStore(a, ToolChain) as store:
        for c in chains(6):
            store.write(c)
    with RecordStore(b, ToolChain) as store:
        for c in chains(6, start=4):
            store.write(c)
    assert merge_stores([a, b], tmp_path / "merged", ToolChain) == 10
    assert merge_stores([a, b], tmp_path / "merged", ToolChain) == 0
