"""Train / held-out splits that every stage agrees on.

The split of a record depends only on its id and the fraction, so SFT, RL and eval (and every
machine of a sharded run) put each arena on the same side without sharing any state.
"""

from __future__ import annotations

import hashlib


def holdout_score(record_id: str, salt: str = "holdout") -> float:
    """A number in [0, 1) that is fixed for ``record_id``."""
    digest = hashlib.sha256(f"{salt}:{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_holdout(record_id: str, fraction: float, salt: str = "holdout") -> bool:
    """Whether a record belongs to the held-out split (eval only; never trained on)."""
    return holdout_score(record_id, salt) < fraction
