"""Replays BFCL multi-turn calls and applies BFCL's checks. RUNS INSIDE THE SANDBOX.

This file is not imported by ASTRA on the host: ``astra_bfcl.replay`` reads its source, appends
a call of ``main(payload)`` and runs it with the sandbox component, which prints one JSON object
on stdout. It needs only the standard library and bfcl-eval (visible read-only in the sandbox).

The payload says which classes are involved, their ``initial_config``, whether the entry is a
long-context one, the ground-truth calls per turn and the agent's calls (already decoded:
``{"name", "arguments"}``), either grouped per turn or flat (then ``infer_turns`` finds the turn
boundaries that pass the most turns). Both sides run on separate, fresh instances made exactly as
``bfcl_eval.eval_checker.multi_turn_eval.multi_turn_utils.execute_multi_turn_func_call`` makes
them; results are rendered as BFCL renders them; each turn is judged with bfcl-eval's own
``state_checker`` and ``response_checker`` (and, for turns whose ground truth is empty, the rule
of ``multi_turn_irrelevance_checker``: no call at all).
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import inspect
import json
from typing import Any

from bfcl_eval.constants.executable_backend_config import (
    CLASS_FILE_PATH_MAPPING,
    STATELESS_CLASSES,
)
from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import (
    response_checker,
    state_checker,
)

DETAIL_CHARS = 300


def make_instances(classes: list[str], config: dict[str, Any], long_context: bool) -> dict:
    """Fresh instances of the involved classes, loaded as BFCL loads them."""
    instances = {}
    for class_name in classes:
        module = importlib.import_module(CLASS_FILE_PATH_MAPPING[class_name])
        instance = getattr(module, class_name)()
        if class_name not in STATELESS_CLASSES:
            instance._load_scenario(
                copy.deepcopy(config.get(class_name, {})), long_context=long_context
            )
        instances[class_name] = instance
    return instances


def method_owners(instances: dict) -> dict[str, str]:
    """Public method name -> class name (later classes win, as in BFCL's mapping)."""
    owners = {}
    for class_name, instance in instances.items():
        for name, _ in inspect.getmembers(instance, predicate=inspect.ismethod):
            if not name.startswith("_"):
                owners[name] = class_name
    return owners


def render(value: Any) -> str:
    """A call's result as BFCL's ``execute_multi_turn_func_call`` renders it."""
    if type(value) is str:
        return value
    if type(value) is dict:
        try:
            return json.dumps(value)
        except Exception:
            return str(value)
    return str(value)


def execute(instances: dict, owners: dict[str, str], call: dict) -> str:
    name = call.get("name")
    arguments = call.get("arguments") or {}
    try:
        if name not in owners:
            raise NameError(f"name '{name}' is not defined")
        if not isinstance(arguments, dict):
            raise TypeError(f"arguments of {name} must be an object")
        # A fresh copy per call, as BFCL's eval of a call string makes fresh literals: some
        # methods keep the list they are given (post_tweet's mentions) and mutate it later.
        arguments = copy.deepcopy(arguments)
        return render(getattr(instances[owners[name]], name)(**arguments))
    except Exception as exc:
        return f"Error during execution: {exc}"


def short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS] + "..."


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def run_ground_truth(payload: dict) -> tuple[list[list[str]], list[dict]]:
    """Results per turn and a deep copy of the instances after each turn."""
    instances = make_instances(payload["classes"], payload["config"], payload["long_context"])
    owners = method_owners(instances)
    results, states = [], []
    for turn in payload["ground_truth"]:
        results.append([execute(instances, owners, call) for call in turn])
        states.append(copy.deepcopy(instances))
    return results, states


def run_model(payload: dict, calls: list[dict]) -> tuple[list[str], list[dict]]:
    """Results of the agent's calls in order and the instances after 0, 1, ... n calls."""
    instances = make_instances(payload["classes"], payload["config"], payload["long_context"])
    owners = method_owners(instances)
    results, states = [], [copy.deepcopy(instances)]
    for call in calls:
        results.append(execute(instances, owners, call))
        states.append(copy.deepcopy(instances))
    return results, states


def judge_content(
    index: int,
    gt_results: list[str],
    gt_state: dict,
    end: int,
    model_results: list[str],
    model_states: list[dict],
) -> dict:
    """BFCL's state check, then its response check, for turn ``index`` ending after call ``end``
    (the response check looks at every result so far, as BFCL's does)."""
    state = state_checker(model_states[end], gt_state)
    if not state["valid"]:
        differences = state.get("details", {}).get("differences", {})
        return {
            "checked": True,
            "passed": False,
            "error_type": state["error_type"],
            "message": state["error_message"],
            "details": {k: short(v) for k, v in list(differences.items())[:3]},
        }
    response = response_checker(model_results[:end], gt_results, index)
    if not response["valid"]:
        missing = response.get("details", {}).get("missing_items", [])
        return {
            "checked": True,
            "passed": False,
            "error_type": response["error_type"],
            "message": response["error_message"],
            "details": {"missing_items": [short(m) for m in missing[:3]]},
        }
    return {"checked": True, "passed": True, "error_type": None, "message": ""}


def judge_turn(
    index: int,
    ground_truth: list[dict],
    start: int,
    end: int,
    check_irrelevance: bool,
    content: Any,
) -> dict:
    """BFCL's verdict for turn ``index`` when the agent's calls start..end are that turn;
    ``content(end)`` runs the state and response checks."""
    if not ground_truth:
        if not check_irrelevance:
            return {"checked": False, "passed": True, "error_type": None, "message": ""}
        if end == start:
            return {"checked": True, "passed": True, "error_type": None, "message": ""}
        return {
            "checked": True,
            "passed": False,
            "error_type": "multi_turn:irrelevance_error:decoder_success",
            "message": f"Model outputs valid function calls when it should not for turn {index}.",
        }
    if end == start:
        return {
            "checked": True,
            "passed": False,
            "error_type": "multi_turn:empty_turn_model_response",
            "message": f"Model response list is empty for turn {index}",
        }
    return content(end)


def best_splits(verdict: Any, turns: int, calls: int) -> list[int]:
    """Turn end indices (non-decreasing, the last = calls) that pass the most turns."""
    # best[k][e]: most passes of turns 0..k with turn k ending after call e.
    neg = -1
    best = [[neg] * (calls + 1) for _ in range(turns)]
    back = [[0] * (calls + 1) for _ in range(turns)]
    for k in range(turns):
        for end in range(calls + 1):
            starts = [0] if k == 0 else range(end + 1)
            for start in starts:
                before = 0 if k == 0 else best[k - 1][start]
                if before < 0:
                    continue
                score = before + int(verdict(k, start, end)["passed"])
                if score > best[k][end]:
                    best[k][end], back[k][end] = score, start
    ends, end = [], calls
    for k in range(turns - 1, -1, -1):
        ends.append(end)
        end = back[k][end]
    return ends[::-1]


def main(payload: dict) -> dict:
    ground_truth = payload["ground_truth"]
    gt_results, gt_states = run_ground_truth(payload)
    model = payload.get("model")
    splits: list[int] | None
    if model is None:  # replay the ground truth itself (arena generation)
        calls = [call for turn in ground_truth for call in turn]
        splits, position = [], 0
        for turn in ground_truth:
            position += len(turn)
            splits.append(position)
    elif payload.get("per_turn", True):
        if len(model) > len(ground_truth):
            raise ValueError(f"{len(model)} turns of calls for {len(ground_truth)} turns")
        model = list(model) + [[] for _ in range(len(ground_truth) - len(model))]
        calls = [call for turn in model for call in turn]
        splits, position = [], 0
        for turn in model:
            position += len(turn)
            splits.append(position)
    else:
        calls, splits = list(model), None
    model_results, model_states = run_model(payload, calls)
    check_irrelevance = bool(payload.get("check_irrelevance", True))
    contents: dict[tuple[int, int], dict] = {}

    def verdict(k: int, start: int, end: int) -> dict:
        def content(end: int) -> dict:
            if (k, end) not in contents:
                contents[k, end] = judge_content(
                    k, gt_results[k], gt_states[k], end, model_results, model_states
                )
            return contents[k, end]

        return judge_turn(k, ground_truth[k], start, end, check_irrelevance, content)

    inferred = splits is None
    if splits is None:
        splits = best_splits(verdict, len(ground_truth), len(calls))
    turns, start = [], 0
    for k, end in enumerate(splits):
        turns.append({**verdict(k, start, end), "calls": end - start})
        start = end
    out = {
        "turns": turns,
        "splits": splits,
        "inferred": inferred,
        "model_digests": [digest(r) for r in model_results],
    }
    if payload.get("return_results"):
        out["gt_results"] = gt_results
    return out
