"""Read back the history of an offline W&B run (``wandb/offline-run-*/run-*.wandb``) without
network or login: for tests and for checking what a run logged before ``wandb sync``.

The file is a LevelDB-style log (32 KiB blocks, 7-byte record headers) of ``Record`` protobufs,
behind a 7-byte ``:W&B`` file header. This reads only what it needs; it relies on W&B's
internal protobuf module, so treat it as a debugging aid, not an API.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

_BLOCK = 32768
_HEADER = struct.Struct("<IHB")  # crc32c, length, chunk type
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _chunks(data: bytes) -> list[bytes]:
    if data[:4] != b":W&B":
        raise ValueError("not a W&B run file (no :W&B header)")
    records: list[bytes] = []
    pending = b""
    pos = 7
    while pos + _HEADER.size <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER.size:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = _HEADER.unpack_from(data, pos)
        pos += _HEADER.size
        chunk = data[pos : pos + length]
        pos += length
        if kind == _FULL:
            records.append(chunk)
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            records.append(pending + chunk)
            pending = b""
        elif kind == 0 and length == 0:
            break
    return records


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows logged with ``run.log`` in an offline run directory, in order. wandb's service
    process writes the file and can still be flushing it after ``run.finish()`` returns (a run of
    57 rows read 49 right after it, all 57 a second later): poll for the rows you expect."""
    from wandb.proto import wandb_internal_pb2 as pb

    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb file in {run_dir}")
    rows: list[dict[str, Any]] = []
    for raw in _chunks(files[0].read_bytes()):
        record = pb.Record()  # type: ignore[attr-defined]
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            rows.append(
                {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
            )
    return rows
