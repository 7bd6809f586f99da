"""When to retry an HTTP chat call and how long to wait first."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from astra_llm.options import BackoffOptions

# Worth another attempt: the server is busy, overloaded or briefly broken (as the OpenAI SDK).
RETRY_STATUSES = frozenset({408, 409, 429})
# The endpoint refuses everything this backend sends: a configuration error, not a record's.
ENDPOINT_STATUSES = frozenset({401, 403, 404})


def is_retryable(status: int) -> bool:
    return status in RETRY_STATUSES or status >= 500


def retry_after_s(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds a server asked us to wait: ``retry-after-ms`` (OpenAI), or ``Retry-After`` as
    seconds or an HTTP date. ``None`` when absent or unreadable."""
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class Backoff:
    """``min(max_s, base_s * factor**(attempt-1))``, of which a ``jitter`` fraction is drawn
    at random, from a generator seeded by the run seed (reproducible sequences of waits)."""

    def __init__(self, options: BackoffOptions, rng: random.Random) -> None:
        self.options = options
        self._rng = rng
        self._lock = threading.Lock()

    def delay(self, attempt: int) -> float:
        o = self.options
        full = min(o.max_s, o.base_s * o.factor ** max(0, attempt - 1))
        with self._lock:
            u = self._rng.random()
        return full * (1.0 - o.jitter * u)
