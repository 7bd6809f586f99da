"""Reading bfcl-eval's multi-turn data: entries, ground truth and function docs.

bfcl-eval is an optional dependency; every entry point here fails with an error that says how to
install it (``pip install --no-deps bfcl-eval mpmath``: its declared dependencies pull ~150
packages that the multi-turn data, classes and checker do not need).
"""

from __future__ import annotations

import importlib
import inspect
import json
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from astra_core.errors import AstraError

CATEGORIES: tuple[str, ...] = ("base", "miss_func", "miss_param", "long_context")
# The eight executable classes of the multi-turn suite (bfcl-eval's CLASS_FILE_PATH_MAPPING also
# lists web-search and memory classes, which need the network or embedding models).
MULTI_TURN_CLASSES: tuple[str, ...] = (
    "GorillaFileSystem",
    "MathAPI",
    "MessageAPI",
    "TwitterAPI",
    "TicketAPI",
    "TradingBot",
    "TravelAPI",
    "VehicleControlAPI",
)
INSTALL_HINT = "pip install --no-deps bfcl-eval mpmath"


class BfclNotInstalled(AstraError):
    """bfcl-eval (or mpmath, which its MathAPI imports) is missing."""


def require_bfcl() -> Any:
    """The ``bfcl_eval`` package, or a ``BfclNotInstalled`` that says how to install it."""
    try:
        import bfcl_eval
        import mpmath  # noqa: F401  (MathAPI imports it: fail here, not inside the sandbox)
    except ImportError as exc:
        raise BfclNotInstalled(
            f"the bfcl plugin needs bfcl-eval and mpmath ({exc.name} is missing): "
            f"install them with `{INSTALL_HINT}`"
        ) from None
    return bfcl_eval


def bfcl_version() -> str:
    require_bfcl()
    try:
        return metadata.version("bfcl-eval")
    except metadata.PackageNotFoundError:  # e.g. a source checkout on sys.path
        return "unknown"


def data_dir() -> Path:
    return Path(require_bfcl().__file__).parent / "data"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise AstraError(f"bfcl-eval data file {path} is missing: reinstall `{INSTALL_HINT}`")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise AstraError(f"{path}:{number}: not valid JSON: {exc}") from None
    return rows


@cache
def load_category(category: str) -> tuple[dict[str, Any], ...]:
    """The entries of ``multi_turn_<category>`` with their ``ground_truth`` merged in."""
    if category not in CATEGORIES:
        raise AstraError(
            f"unknown BFCL multi-turn category {category!r}; known: {', '.join(CATEGORIES)}"
        )
    folder = data_dir()
    name = f"BFCL_v4_multi_turn_{category}.json"
    entries = _read_jsonl(folder / name)
    answer_rows = _read_jsonl(folder / "possible_answer" / name)
    answers = {row["id"]: row["ground_truth"] for row in answer_rows}
    merged = []
    for entry in entries:
        if entry["id"] not in answers:
            raise AstraError(f"bfcl-eval entry {entry['id']} has no ground truth in {name}")
        merged.append({**entry, "ground_truth": answers[entry["id"]]})
    return tuple(merged)


@cache
def function_docs(class_name: str) -> tuple[dict[str, Any], ...]:
    """BFCL's function docs (name, description, parameters, response) of one class."""
    require_bfcl()
    from bfcl_eval.constants.executable_backend_config import MULTI_TURN_FUNC_DOC_FILE_MAPPING

    if class_name not in MULTI_TURN_FUNC_DOC_FILE_MAPPING:
        raise AstraError(f"bfcl-eval has no function docs for class {class_name!r}")
    path = data_dir() / "multi_turn_func_doc" / MULTI_TURN_FUNC_DOC_FILE_MAPPING[class_name]
    return tuple(_read_jsonl(path))


def module_of(class_name: str) -> str:
    require_bfcl()
    from bfcl_eval.constants.executable_backend_config import CLASS_FILE_PATH_MAPPING

    try:
        return str(CLASS_FILE_PATH_MAPPING[class_name])
    except KeyError:
        raise AstraError(f"bfcl-eval has no executable class {class_name!r}") from None


@cache
def method_signature(class_name: str, method: str) -> inspect.Signature | None:
    """The signature of a public method of a bfcl-eval class (to name positional arguments).

    Importing the class module only defines the class; nothing of an entry runs on the host.
    """
    cls = getattr(importlib.import_module(module_of(class_name)), class_name)
    fn = getattr(cls, method, None)
    return inspect.signature(fn) if callable(fn) and not method.startswith("_") else None


def is_stateless(class_name: str) -> bool:
    require_bfcl()
    from bfcl_eval.constants.executable_backend_config import STATELESS_CLASSES

    return class_name in STATELESS_CLASSES


def additional_function_prompt() -> str:
    """The user message BFCL sends in the turn where held-out functions come back."""
    require_bfcl()
    from bfcl_eval.constants.default_prompts import DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_FC

    return str(DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_FC)
