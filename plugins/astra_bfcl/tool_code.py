"""The ``tool_code`` of a BFCL arena: one self-contained source per tool.

Each source imports the tool's bfcl-eval class (the sandbox sees the venv's site-packages
read-only), and defines a function named like the tool that calls the method on the class's
instance for this entry, creating it on first use with ``_load_scenario(initial_config,
long_context=...)`` exactly as BFCL does. All tools of a class share that one instance: it is
kept in a process-wide registry (an in-memory module in ``sys.modules``) keyed by entry id and
class, so sharing works whether the sandbox worker loads every tool into one namespace or each
into its own, and a fresh worker (one per episode) starts from the initial state.

The function returns the result rendered as BFCL renders it (a string as is, a dict as JSON,
anything else with ``str``) and an exception as ``"Error during execution: ..."``, the text
BFCL puts in its execution results, so the agent sees what BFCL's replay sees.

Why not standard library only (the arena contract's rule)? The classes *are* the environment;
copying their ~3,000 lines into every arena would fork them from the checker that judges them.
``astra_bfcl.generator.arena_problems`` applies every other structural rule.
"""

from __future__ import annotations

import json
from typing import Any

_TEMPLATE = """# BFCL multi-turn tool {name!r}: {class_name}.{name}, bfcl-eval {version}, {entry}.
def _make_{name}():
    import copy
    import json
    import sys
    import types

    from {module} import {class_name}

    def instance():
        registry = sys.modules.get("_astra_bfcl_instances")
        if registry is None:
            registry = sys.modules["_astra_bfcl_instances"] = types.ModuleType("instances")
            registry.instances = {{}}
        key = {key!r}
        if key not in registry.instances:
            found = {class_name}()
            if {load!r}:
                found._load_scenario(json.loads({config!r}), long_context={long_context!r})
            registry.instances[key] = found
        return registry.instances[key]

    def {name}(**arguments):
        try:
            result = instance().{name}(**copy.deepcopy(arguments))
        except Exception as exc:
            return "Error during execution: " + str(exc)
        if type(result) is dict:
            try:
                return json.dumps(result)
            except Exception:
                pass
        return result if type(result) is str else str(result)

    return {name}


{name} = _make_{name}()
"""


def tool_source(
    name: str,
    *,
    class_name: str,
    module: str,
    entry_id: str,
    config: dict[str, Any],
    long_context: bool,
    stateless: bool,
    version: str,
) -> str:
    """The source of one BFCL tool (see the module docstring)."""
    if not name.isidentifier():
        raise ValueError(f"BFCL function name {name!r} is not a Python identifier")
    return _TEMPLATE.format(
        name=name,
        class_name=class_name,
        module=module,
        entry=entry_id,
        key=f"{entry_id}/{class_name}",
        load=not stateless,
        # Never sort the keys: their order is data (ls and find list a folder in that order).
        config=json.dumps(config, ensure_ascii=False, separators=(",", ":")),
        long_context=long_context,
        version=version,
    )
