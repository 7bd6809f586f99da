"""The ``console`` tracker: ``step 12 | loss 0.4213 | reward 0.5`` lines on stderr."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import IO, Any

from astra_trackers.metric_values import is_main_process, plain_metrics
from astra_trackers.options import ConsoleOptions


class ConsoleTracker:
    def __init__(self, options: ConsoleOptions, stream: IO[str] | None = None) -> None:
        if options.every < 1:
            raise ValueError(f"tracker 'console': every must be >= 1, got {options.every}")
        self.options = options
        self.stream = stream
        self._active = is_main_process() or not options.main_process_only

    def _format(self, value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.{self.options.digits}g}"
        return str(value)

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        if not self._active or step % self.options.every:
            return
        values = plain_metrics(metrics)
        keys = self.options.keys or tuple(k for k in values if k != "step")
        parts = [f"{k} {self._format(values[k])}" for k in keys if k in values]
        print(" | ".join([f"step {step}", *parts]), file=self.stream or sys.stderr, flush=True)

    def close(self) -> None:
        pass
