"""The ``jsonl`` tracker: one JSON object per logged step, appended and flushed at once (a run
killed mid-way keeps every line it logged)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from astra_trackers.metric_values import is_main_process, plain_metrics
from astra_trackers.options import JSONLOptions


class JSONLTracker:
    def __init__(self, options: JSONLOptions, workdir: str | Path) -> None:
        self.options = options
        path = Path(options.path).expanduser()
        self.path = path if path.is_absolute() else Path(workdir) / path
        self._file: IO[str] | None = None
        self._active = is_main_process() or not options.main_process_only

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        if not self._active:
            return
        line: dict[str, Any] = {**plain_metrics(metrics), "step": int(step)}
        if self.options.timestamps:
            line["time"] = round(time.time(), 3)
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
