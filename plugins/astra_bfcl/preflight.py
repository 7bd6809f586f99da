"""What the bfcl components need on this machine, checked before a run starts: bfcl-eval and
mpmath (which its MathAPI imports), both optional dependencies of ASTRA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from astra_bfcl.data import INSTALL_HINT
from astra_core.preflight import Problem, missing_module


def bfcl_problems(options: Any, base_dir: Path) -> list[Problem]:
    """bfcl-eval or mpmath is not installed: one problem naming what is missing."""
    missing = [
        name
        for name, module in (("bfcl-eval", "bfcl_eval"), ("mpmath", "mpmath"))
        if missing_module(module, fix=INSTALL_HINT)
    ]
    if not missing:
        return []
    return [
        Problem(
            f"needs bfcl-eval and mpmath; not installed: {', '.join(missing)}",
            INSTALL_HINT,
        )
    ]
