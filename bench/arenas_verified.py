"""Arenas verified per second with the ``offline-world`` generator.

Two numbers, both through the real sandbox component:

* ``synthesis``: arenas built per second, each with every check the generator runs (a sandbox
  run to accept the tools, one re-run per merge, a final replay of every gold call and of one
  call per distractor);
* ``replay``: already-built arenas whose gold calls are all re-run (one sandbox run per arena,
  ``verify_arena``) per second, i.e. the cost of checking a finished arena dataset.

Usage::

    python bench/arenas_verified.py [--count 60] [--sandbox bubblewrap|subprocess] [--json]

The sandbox defaults to bubblewrap where ``bwrap`` is installed (what a user runs), else
subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from collections import Counter

from astra_core.arena_verification import verify_arena
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.registry import ComponentBuilder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60, help="arenas to build")
    parser.add_argument(
        "--sandbox",
        default="bubblewrap" if shutil.which("bwrap") else "subprocess",
        help="sandbox component name",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    builder = ComponentBuilder(load_plugins().registry, seed=args.seed)
    gen = builder.build(
        "environment_generator",
        ComponentSpec("offline-world", {"count": args.count, "sandbox": args.sandbox}),
    )
    from astra_arenas.generator import topology_schedule

    schedule = topology_schedule(gen.options.topologies, args.count)
    gen.sampler  # noqa: B018  (embed the tool pool before the clock starts)
    start = time.perf_counter()
    arenas = [gen.build(args.seed, i, schedule[i], f"bench-{i}") for i in range(args.count)]
    synth_s = time.perf_counter() - start

    start = time.perf_counter()
    passed = 0
    for arena in arenas:
        passed += all(r.passed for r in verify_arena(arena, gen.sandbox, timeout_s=30))
    replay_s = time.perf_counter() - start

    result = {
        "arenas": len(arenas),
        "topologies": dict(Counter(a.topology for a in arenas)),
        "gold_calls": sum(len(a.needed) for a in arenas),
        "sandbox": args.sandbox,
        "sandbox_runs_in_synthesis": gen.stats["sandbox_runs"],
        "synthesis_arenas_per_s": round(len(arenas) / synth_s, 2),
        "replay_arenas_per_s": round(len(arenas) / replay_s, 2),
        "replay_all_passed": passed == len(arenas),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
