"""astra_core.row_files: every format a user's rows come in, read with the place of each row;
bad files named; rows written whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from astra_core.errors import RecordError
from astra_core.row_files import config_paths, read_rows, row_format, write_rows

ROWS = [{"question": "Who?", "answer": "Ada"}, {"question": "Where?", "answer": "Paris"}]


@pytest.mark.parametrize(
    ("suffix", "places"),
    [
        (".jsonl", [":1", ":2"]),
        (".json", [" (item 1)", " (item 2)"]),
        (".parquet", [" (row 1)", " (row 2)"]),
    ],
)
def test_written_rows_read_back_with_their_places(tmp_path: Path, suffix: str, places) -> None:
    path = tmp_path / f"rows{suffix}"
    assert write_rows(iter(ROWS), path) == 2
    read = list(read_rows(path))
    assert [row for _, row in read] == ROWS
    assert [where for where, _ in read] == [f"{path}{p}" for p in places]
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, then renamed


def test_csv_and_the_datasets_json_shape(tmp_path: Path) -> None:
    table = tmp_path / "q.csv"
    table.write_text("question,answer\nWho?,Ada\n", encoding="utf-8")
    assert list(read_rows(table)) == [(f"{table}:2", {"question": "Who?", "answer": "Ada"})]
    wrapped = tmp_path / "q.json"
    wrapped.write_text(json.dumps({"data": ROWS}), encoding="utf-8")
    assert [row for _, row in read_rows(wrapped)] == ROWS


def test_a_dataset_directory(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "ds"))
    assert row_format(tmp_path / "ds") == "dataset"
    assert [row for _, row in read_rows(tmp_path / "ds")] == ROWS


def test_bad_files_are_named_with_the_line(tmp_path: Path) -> None:
    broken = tmp_path / "rows.jsonl"
    broken.write_text('{"question": "ok"}\n\n{"question": \n', encoding="utf-8")
    with pytest.raises(RecordError, match=r"rows\.jsonl:3: not valid JSON"):
        list(read_rows(broken))
    with pytest.raises(RecordError, match=r"no such file or directory \(questions\)"):
        list(read_rows(tmp_path / "missing.jsonl", what="questions"))
    (tmp_path / "x.txt").write_text("Who?\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"cannot tell the format from the suffix '\.txt'"):
        list(read_rows(tmp_path / "x.txt"))
    with pytest.raises(RecordError, match=r"write rows to a \.jsonl"):
        write_rows(ROWS, tmp_path / "rows.csv")


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    write_rows(ROWS, path)

    def rows():
        yield ROWS[0]
        raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError):
        write_rows(rows(), path)
    assert [row for _, row in read_rows(path)] == ROWS


def test_config_paths_start_at_the_config_folder(tmp_path: Path) -> None:
    config = tmp_path / "configs" / "run.toml"
    assert config_paths("rows.jsonl", str(config)) == [tmp_path / "configs" / "rows.jsonl"]
    assert config_paths(("/abs.jsonl", "b.jsonl"), None) == [
        Path("/abs.jsonl"),
        Path.cwd() / "b.jsonl",
    ]
