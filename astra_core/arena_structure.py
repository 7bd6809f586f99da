"""Structural checks of an arena, without an LLM: usable by any environment generator.

``validate_structure(arena)`` returns a list of problems (empty when the arena is sound):

* sub-question ids are unique and every ``depends_on`` names an existing sub-question;
* the dependencies form a DAG (no cycle, no self-dependency);
* non-tool sub-questions are leaves (the paper's tool-necessity rule);
* every tool-needing sub-question names a tool offered in ``tools`` that has code, and a gold
  call to that tool (``require_calls``);
* every tool in ``tools`` has code, tool names are unique, distractors are offered tools that
  no sub-question needs;
* tool code imports only the standard library and defines a function named like the tool;
* the declared topology matches the dependency structure of the tool sub-questions.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Mapping, Sequence

from astra_core.records import Arena, SubQuestion, tool_name

__all__ = [
    "STDLIB_MODULES",
    "code_problems",
    "decomposition_problems",
    "topology_of",
    "validate_structure",
]

# Python 3.10+ lists its standard library; anything else is a third-party import.
STDLIB_MODULES: frozenset[str] = frozenset(sys.stdlib_module_names)


def decomposition_problems(subquestions: Sequence[SubQuestion]) -> list[str]:
    """Ids, dependencies, acyclicity and the leaves rule."""
    problems: list[str] = []
    ids = [sq.id for sq in subquestions]
    seen: set[str] = set()
    for sid in ids:
        if not sid:
            problems.append("a sub-question has an empty id")
        elif sid in seen:
            problems.append(f"sub-question id {sid!r} is used twice")
        seen.add(sid)
    known = set(ids)
    for sq in subquestions:
        for dep in sq.depends_on:
            if dep == sq.id:
                problems.append(f"sub-question {sq.id!r} depends on itself")
            elif dep not in known:
                problems.append(f"sub-question {sq.id!r} depends on unknown id {dep!r}")
    cycle = _find_cycle({sq.id: [d for d in sq.depends_on if d in known] for sq in subquestions})
    if cycle:
        problems.append("dependency cycle: " + " -> ".join(cycle))
    depended = {d for sq in subquestions for d in sq.depends_on}
    for sq in subquestions:
        if not sq.needs_tool and sq.id in depended:
            users = sorted(o.id for o in subquestions if sq.id in o.depends_on)
            problems.append(
                f"non-tool sub-question {sq.id!r} is not a leaf (needed by {', '.join(users)})"
            )
    return problems


def _find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str]:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt == node:
                continue  # reported as a self-dependency
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def topology_of(subquestions: Sequence[SubQuestion]) -> str | None:
    """The topology the tool sub-questions form, or ``None`` when there are none.

    single: one tool step; parallel-single: several, none depending on another; multi: one
    chain of two or more; parallel-multi: two or more roots or branches with a chain among them.
    Non-tool leaves do not change the topology.
    """
    tool = {sq.id: sq for sq in subquestions if sq.needs_tool}
    if not tool:
        return None
    if len(tool) == 1:
        return "single"
    deps = {sid: [d for d in sq.depends_on if d in tool] for sid, sq in tool.items()}
    depth: dict[str, int] = {}

    def level(sid: str, guard: frozenset[str] = frozenset()) -> int:
        if sid not in depth:
            if sid in guard:
                return 0  # a cycle; reported elsewhere
            depth[sid] = 1 + max((level(d, guard | {sid}) for d in deps[sid]), default=0)
        return depth[sid]

    longest = max(level(s) for s in tool)
    if longest == 1:
        return "parallel-single"
    users: dict[str, int] = {s: 0 for s in tool}
    for sid in tool:
        for d in deps[sid]:
            users[d] += 1
    roots = [s for s in tool if not deps[s]]
    is_chain = (
        len(roots) == 1
        and all(len(d) <= 1 for d in deps.values())
        and all(n <= 1 for n in users.values())
    )
    return "multi" if is_chain else "parallel-multi"


def code_problems(name: str, code: str) -> list[str]:
    """Tool code must parse, import only the standard library and define ``name``."""
    try:
        tree = ast.parse(code, filename=f"<tool {name}>")
    except SyntaxError as exc:
        return [f"tool {name!r}: code does not parse: {exc.msg} (line {exc.lineno})"]
    problems: list[str] = []
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        for module in modules:
            top = module.split(".")[0]
            if top not in STDLIB_MODULES:
                problems.append(f"tool {name!r}: imports {module!r}, not in the standard library")
    defined = {
        n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    } | {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
         if isinstance(t, ast.Name)}  # fmt: skip
    if name not in defined:
        problems.append(f"tool {name!r}: code defines no top-level function {name!r}")
    return problems


def validate_structure(
    arena: Arena, *, require_calls: bool = True, check_topology: bool = True
) -> list[str]:
    """Every structural problem of ``arena`` (see the module docstring); [] when sound."""
    problems = decomposition_problems(arena.subquestions)
    names = [tool_name(t) for t in arena.tools]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"tools offered twice: {', '.join(duplicates)}")
    offered = set(names)
    for name in names:
        if name not in arena.tool_code:
            problems.append(f"tool {name!r} is offered but has no code")
    for name in sorted(arena.tool_code):
        problems.extend(code_problems(name, arena.tool_code[name]))
    needed_tools: set[str] = set()
    if not arena.needed:
        problems.append("no sub-question needs a tool")
    for sq in arena.needed:
        if not sq.tool:
            problems.append(f"sub-question {sq.id!r} needs a tool but names none")
            continue
        needed_tools.add(sq.tool)
        if sq.tool not in offered:
            problems.append(f"sub-question {sq.id!r} needs tool {sq.tool!r}, which is not offered")
        if not sq.answer:
            problems.append(f"sub-question {sq.id!r} has an empty gold answer")
        if sq.call is None:
            if require_calls:
                problems.append(f"sub-question {sq.id!r} has no verified call")
        elif sq.call.name != sq.tool:
            problems.append(
                f"sub-question {sq.id!r}: its call is to {sq.call.name!r}, not to {sq.tool!r}"
            )
    for sq in arena.subquestions:
        if not sq.needs_tool and (sq.tool or sq.call):
            problems.append(f"non-tool sub-question {sq.id!r} has a tool or a call")
    for name in arena.distractors:
        if name not in offered:
            problems.append(f"distractor {name!r} is not among the offered tools")
        if name in needed_tools:
            problems.append(f"distractor {name!r} is needed by a sub-question")
    if check_topology and not any("cycle" in p or "unknown id" in p for p in problems):
        actual = topology_of(arena.subquestions)
        if actual is not None and actual != arena.topology:
            problems.append(
                f"topology is declared {arena.topology!r} but the structure is {actual!r}"
            )
    return problems
