"""Running ``replay_script`` in the sandbox: the ground truth and an agent's calls, judged.

One sandbox run replays one or many payloads (see ``replay_script.main``) and prints the
verdicts as JSON after a marker line, so that anything the classes print cannot be mistaken for
the answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

from astra_core.errors import AstraError
from astra_core.protocols import Sandbox
from astra_core.records import Arena

MARKER = "@@astra-bfcl-replay@@"
_RUNNER = f"""

def _astra_bfcl_run(payloads):
    import json
    import traceback

    out = []
    for payload in payloads:
        try:
            out.append({{"ok": True, "result": main(payload)}})
        except Exception as exc:
            out.append({{"ok": False, "error": type(exc).__name__ + ": " + str(exc),
                        "traceback": traceback.format_exc()[-2000:]}})
    print({MARKER!r} + json.dumps(out))


_astra_bfcl_run(__import__("json").loads(%s))
"""


def output_digest(text: str) -> str:
    """The digest ``replay_script`` reports for each result (same function, same bytes)."""
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


class ReplayError(AstraError):
    """The sandbox could not replay a BFCL entry (bfcl-eval missing there, a limit hit, ...)."""


@cache
def script_source() -> str:
    return resources.files("astra_bfcl").joinpath("replay_script.py").read_text(encoding="utf-8")


def payload_for(
    arena: Arena,
    *,
    model: Any = None,
    per_turn: bool = True,
    check_irrelevance: bool = True,
    return_results: bool = False,
) -> dict[str, Any]:
    """What ``replay_script.main`` needs to judge ``model`` (None: the ground truth itself)."""
    meta = arena.metadata
    if meta.get("source") != "bfcl-eval":
        raise AstraError(
            f"arena {arena.id} is not a BFCL multi-turn arena (metadata.source is "
            f"{meta.get('source')!r}); it was not made by the bfcl-multi-turn generator"
        )
    missing = [k for k in ("involved_classes", "initial_config", "ground_truth") if k not in meta]
    if missing:
        raise AstraError(f"BFCL arena {arena.id}: metadata lacks {', '.join(missing)}")
    return {
        "id": meta.get("entry_id", arena.id),
        "classes": list(meta["involved_classes"]),
        "config": meta["initial_config"],
        "long_context": bool(meta.get("long_context", False)),
        "ground_truth": meta["ground_truth"],
        "model": model,
        "per_turn": per_turn,
        "check_irrelevance": check_irrelevance,
        "return_results": return_results,
    }


def run_replays(
    sandbox: Sandbox, payloads: Sequence[Mapping[str, Any]], *, timeout_s: float | None = None
) -> list[dict[str, Any]]:
    """One sandbox run for all ``payloads``; per payload ``{"ok", "result" | "error"}``."""
    if not payloads:
        return []
    data = json.dumps(list(payloads), ensure_ascii=False)
    code = script_source() + _RUNNER % repr(data)
    ids = ", ".join(str(p.get("id", "?")) for p in payloads[:5])
    try:
        result = sandbox.run(code, timeout_s=timeout_s)
    except Exception as exc:  # a sandbox component that raises instead of reporting
        raise ReplayError(
            f"replaying BFCL entries {ids} in the sandbox failed: {type(exc).__name__}: "
            f"{str(exc)[:500]}"
        ) from exc
    if result.limit == "output" and len(payloads) > 1:
        # More verdicts than the sandbox lets through in one run: halve the batch.
        half = len(payloads) // 2
        return run_replays(sandbox, payloads[:half], timeout_s=timeout_s) + run_replays(
            sandbox, payloads[half:], timeout_s=timeout_s
        )
    line = next((ln for ln in reversed(result.stdout.splitlines()) if ln.startswith(MARKER)), None)
    if line is None or not result.ok:
        tail = (result.stderr or result.stdout)[-1500:]
        limit = f" (limit hit: {result.limit})" if result.limit else ""
        hint = ""
        if "No module named 'bfcl_eval'" in tail or "No module named 'mpmath'" in tail:
            hint = (
                " The sandbox cannot import bfcl-eval: install it where the sandbox's Python "
                "sees it (pip install --no-deps bfcl-eval mpmath)."
            )
        elif result.limit == "output":
            hint = " One verdict is larger than the sandbox's max_output_bytes: raise it."
        raise ReplayError(
            f"replaying BFCL entries {ids} in the sandbox failed with exit status "
            f"{result.exit_code}{limit}.{hint}\n{tail}"
        )
    outcomes = json.loads(line[len(MARKER) :])
    if len(outcomes) != len(payloads):
        raise ReplayError(f"the replay returned {len(outcomes)} verdicts for {len(payloads)}")
    return list(outcomes)
