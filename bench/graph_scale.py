"""Tool-graph building and chain sampling at the paper's catalog scale.

The paper's tool pool is 1,585 servers with 19,036 tools. This bench generates a catalog of that
size with a seeded generator (41 domains; servers of 3 to 90 tools, long-tailed around 12; tools
that search, get, list, create, update and link entities, most with an output schema whose ids
feed other tools' parameters, some documented only by name and description, parameter names in
snake_case, camelCase and generic ``id``), writes it as a ``server-file`` JSONL (the authors'
``mcp_servers.jsonl`` rows, with MCP ``outputSchema``s), and measures, in a fresh subprocess per
size so peak memory is that size's own:

* load: ``server-file`` parsing, normalisation and the paper's filters;
* graph: the schema-flow graph builder on every server;
* walks: the ``offline-chain-walk`` sampler's chain sampling (its seeded weighted random walks,
  default options) on every graph;

at 10%, 50% and 100% of the servers (the first N of the file). It prints a table, the total
time at 100% against the 60 s target, and the growth ratio (time at 100% / time at 10%; 10 is
linear). ``--profile`` adds a cProfile of loading and graph building at the largest size.

Usage::

    python bench/graph_scale.py [--fractions 0.1,0.5,1] [--seed 0] [--json] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SERVERS = 1585
TOOLS = 19036
TARGET_S = 60.0
MIN_TOOLS, MAX_TOOLS = 3, 90

# whitespace-separated word lists, split once: easier to read than one word per line
DOMAINS = (  # noqa: SIM905
    "commerce finance banking insurance travel airlines hotels logistics shipping healthcare "
    "pharmacy education library media music video news sports gaming weather maps real_estate "
    "hr recruiting crm marketing advertising support ticketing devops cloud storage security "
    "iot energy agriculture legal government food events social"
).split()
NOUNS = (  # noqa: SIM905
    "order customer product invoice payment account transfer card loan policy claim booking "
    "flight hotel room reservation trip shipment parcel warehouse carrier route patient doctor "
    "appointment prescription pharmacy course student teacher lesson book loan_request author "
    "article episode playlist track album artist channel video comment match team player "
    "league venue station forecast alert region property listing agent lease tenant employee "
    "candidate job interview contact lead campaign ad audience ticket agent_queue incident "
    "deployment service cluster bucket file folder user role device sensor reading meter "
    "tariff field crop harvest contract case filing permit recipe menu restaurant event "
    "attendee post group message thread project task milestone repository branch release"
).split()
STATUSES = ("active", "pending", "closed", "cancelled", "archived")


def _plural(noun: str) -> str:
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def _words(noun: str) -> str:
    return noun.replace("_", " ")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def check_spread(servers: int, tools: int) -> None:
    """Raise ValueError unless ``tools`` fit ``servers`` of MIN_TOOLS..MAX_TOOLS tools each."""
    if not servers * MIN_TOOLS <= tools <= servers * MAX_TOOLS:
        raise ValueError(
            f"{tools} tools cannot be spread over {servers} servers of {MIN_TOOLS} to "
            f"{MAX_TOOLS} tools each"
        )


class CatalogGenerator:
    """Seeded servers whose tools hand ids to each other, as ``mcp_servers.jsonl`` rows."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        pool = random.Random(seed + 1)
        self.domain_nouns = {d: pool.sample(NOUNS, 12) for d in DOMAINS}

    def sizes(self, servers: int, tools: int) -> list[int]:
        """Tools per server: long-tailed (lognormal around 9), 3..90, summing to ``tools``."""
        check_spread(servers, tools)  # else the balancing loop below would never end
        rng = self.rng
        sizes = [
            min(MAX_TOOLS, max(MIN_TOOLS, round(rng.lognormvariate(2.2, 0.65))))
            for _ in range(servers)
        ]
        while (diff := tools - sum(sizes)) != 0:
            i = rng.randrange(servers)
            step = 1 if diff > 0 else -1
            if MIN_TOOLS <= sizes[i] + step <= MAX_TOOLS:
                sizes[i] += step
        return sizes

    def id_param(self, noun: str, style: str) -> tuple[str, dict[str, Any]]:
        schema = {"type": "string", "description": f"Identifier of the {_words(noun)}."}
        if style == "camel":
            return _camel(f"{noun}_id"), schema
        if style == "generic":
            return "id", {"type": "string", "description": f"The {_words(noun)} id to look up."}
        return f"{noun}_id", schema

    def record_schema(self, noun: str, links: list[str]) -> dict[str, Any]:
        props: dict[str, Any] = {
            f"{noun}_id": {"type": "string", "description": f"Identifier of the {_words(noun)}."},
            "name": {"type": "string", "description": f"Display name of the {_words(noun)}."},
            "status": {"type": "string", "enum": list(STATUSES)},
            "created_at": {"type": "string", "description": "Creation date (ISO 8601)."},
        }
        for link in links:
            props[f"{link}_id"] = {
                "type": "string",
                "description": f"Identifier of the {_words(link)} this {_words(noun)} belongs to.",
            }
        if self.rng.random() < 0.5:
            props["owner_email"] = {"type": "string", "description": "Email of the owner."}
        if self.rng.random() < 0.4:
            props["amount"] = {"type": "number", "description": "Amount in the account currency."}
        return {"type": "object", "properties": props}

    def tools_for(self, nouns: list[str], count: int) -> list[dict[str, Any]]:
        """``count`` distinct tools over the server's entities."""
        rng = self.rng
        links = {
            n: rng.sample([m for m in nouns if m != n], k=min(2, len(nouns) - 1)) for n in nouns
        }
        candidates: list[dict[str, Any]] = []
        for noun in nouns:
            plural, words = _plural(noun), _words(noun)
            record = self.record_schema(noun, links[noun])
            style = rng.choice(("snake", "snake", "snake", "camel", "generic"))
            pid, pschema = self.id_param(noun, style)
            candidates.append(
                self.tool(
                    f"search_{plural}",
                    f"Search {_words(plural)} by a word in their name, newest first.",
                    {
                        "query": {"type": "string", "description": "Words to look for."},
                        "status": {"type": "string", "enum": list(STATUSES)},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                    },
                    ["query"],
                    {
                        "type": "object",
                        "properties": {
                            plural: {"type": "array", "items": record},
                            "total": {"type": "integer"},
                        },
                    },
                )
            )
            candidates.append(
                self.tool(
                    f"get_{noun}",
                    f"Get the full details of one {words} by its id.",
                    {pid: pschema},
                    [pid],
                    record,
                )
            )
            for link in links[noun]:
                lid, lschema = self.id_param(link, "snake")
                candidates.append(
                    self.tool(
                        f"list_{_plural(noun)}_of_{link}",
                        f"List the {_words(plural)} that belong to a {_words(link)}.",
                        {lid: lschema, "status": {"type": "string", "enum": list(STATUSES)}},
                        [lid],
                        {
                            "type": "object",
                            "properties": {plural: {"type": "array", "items": record}},
                        },
                    )
                )
                candidates.append(
                    self.tool(
                        f"create_{noun}_for_{link}",
                        f"Create a new {words} under an existing {_words(link)}.",
                        {lid: lschema, "name": {"type": "string", "description": "New name."}},
                        [lid, "name"],
                        {
                            "type": "object",
                            "properties": {f"{noun}_id": record["properties"][f"{noun}_id"]},
                        },
                    )
                )
            candidates.append(
                self.tool(
                    f"update_{noun}_status",
                    f"Change the status of a {words} and return the updated record.",
                    {pid: pschema, "status": {"type": "string", "enum": list(STATUSES)}},
                    [pid, "status"],
                    record,
                )
            )
            for verb, text in (
                ("archive", "Archive a {w} so it no longer shows in searches."),
                ("delete", "Delete a {w} permanently; this cannot be undone."),
                ("export", "Export a {w} as a downloadable CSV file."),
                ("summarize", "Summarize the recent activity of a {w}."),
                ("share", "Share a {w} with another person by email."),
            ):
                params = {pid: pschema}
                required = [pid]
                if verb == "share":
                    params["email"] = {"type": "string", "description": "Recipient email."}
                    required.append("email")
                # a third of these document no output: matched from their name/description only
                returns = None
                if rng.random() > 0.33:
                    returns = {
                        "type": "object",
                        "properties": {
                            f"{noun}_id": record["properties"][f"{noun}_id"],
                            "ok": {"type": "boolean"},
                            "file_url": {"type": "string", "description": "Download link."},
                        },
                    }
                candidates.append(
                    self.tool(f"{verb}_{noun}", text.format(w=words), params, required, returns)
                )
        rng.shuffle(candidates)
        if len(candidates) < count:  # a big server: numbered variants (v2 APIs, regions...)
            extra = []
            for version in range(2, 2 + (count - len(candidates)) // len(candidates) + 2):
                for tool in candidates:
                    clone = json.loads(json.dumps(tool))
                    clone["name"] = f"{tool['name']}_v{version}"
                    clone["description"] = f"{tool['description']} (API version {version})"
                    extra.append(clone)
            candidates += extra
        return candidates[:count]

    @staticmethod
    def tool(
        name: str,
        description: str,
        properties: dict[str, Any],
        required: list[str],
        returns: dict[str, Any] | None,
    ) -> dict[str, Any]:
        tool: dict[str, Any] = {
            "name": name,
            "description": description,
            "inputSchema": {"type": "object", "properties": properties, "required": required},
        }
        if returns is not None:
            tool["outputSchema"] = returns
        return tool

    def rows(self, servers: int, tools: int) -> list[dict[str, Any]]:
        out = []
        for index, size in enumerate(self.sizes(servers, tools)):
            domain = DOMAINS[index % len(DOMAINS)]
            nouns = self.rng.sample(self.domain_nouns[domain], k=self.rng.randint(2, 6))
            title = f"{domain.replace('_', ' ').title()} {_words(nouns[0]).title()} Server {index}"
            out.append(
                {
                    "base_info": {
                        "group_info": {
                            "server_title": title,
                            "server_name": f"{domain}-{nouns[0]}-{index}",
                            "server_description": "Manage "
                            + ", ".join(_words(_plural(n)) for n in nouns)
                            + ".",
                            "domain": domain,
                        },
                        "tool_list": self.tools_for(nouns, size),
                    },
                    "call_info": {"mock_tool": True},
                }
            )
        return out


# -- one size, measured in its own process ----------------------------------------------------


def measure(path: str, seed: int) -> dict[str, Any]:
    from astra_core.context import StageContext
    from astra_core.options import ComponentSpec
    from astra_core.plugins import load_plugins
    from astra_core.records import ToolServer
    from astra_core.registry import ComponentBuilder
    from astra_core.store import RecordStore

    with tempfile.TemporaryDirectory() as tmp:
        builder = ComponentBuilder(load_plugins().registry, seed=seed, workdir=tmp)
        source = builder.build("tool_graph_source", ComponentSpec("server-file", {"path": path}))
        sampler = builder.build("trajectory_sampler", "offline-chain-walk")
        store = RecordStore(Path(tmp) / "synth-trajectories", ToolServer).open()
        ctx = StageContext(
            "synth-trajectories", run_dir=tmp, builder=builder, store=store, quiet=True
        )
        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

        # wall time and this process's CPU time: on a shared machine the CPU time is the steadier
        clock = [(time.perf_counter(), time.process_time())]
        servers = list(source.servers(ctx))
        clock.append((time.perf_counter(), time.process_time()))
        graphs = [source.graph_builder.build(server) for server in servers]
        clock.append((time.perf_counter(), time.process_time()))
        chains = [sampler.chains(graph, ctx) for graph in graphs]
        clock.append((time.perf_counter(), time.process_time()))
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        store.close()
    sizes = sorted(len(s.tools) for s in servers)
    return {
        "servers": len(servers),
        "tools": sum(sizes),
        "largest_server": sizes[-1] if sizes else 0,
        "edges": sum(len(g.edges) for g in graphs),
        "chains": sum(len(c) for c in chains),
        "load_s": clock[1][0] - clock[0][0],
        "graph_s": clock[2][0] - clock[1][0],
        "walks_s": clock[3][0] - clock[2][0],
        "total_s": clock[3][0] - clock[0][0],
        "load_cpu_s": clock[1][1] - clock[0][1],
        "graph_cpu_s": clock[2][1] - clock[1][1],
        "walks_cpu_s": clock[3][1] - clock[2][1],
        "total_cpu_s": clock[3][1] - clock[0][1],
        "peak_rss_mib": peak_rss / 1024,
        "rss_growth_mib": (peak_rss - base_rss) / 1024,
    }


def profile_phases(path: str, seed: int, top: int = 12) -> str:
    """cProfile of loading and of graph building, the functions with the most own time."""
    import cProfile
    import io
    import pstats

    from astra_core.options import ComponentSpec
    from astra_core.plugins import load_plugins
    from astra_core.registry import ComponentBuilder

    builder = ComponentBuilder(load_plugins().registry, seed=seed)
    source = builder.build("tool_graph_source", ComponentSpec("server-file", {"path": path}))
    out = io.StringIO()
    profiler = cProfile.Profile()
    profiler.enable()
    servers = list(source.servers(None))
    profiler.disable()
    out.write(f"== load ({path}) ==\n")
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    profiler = cProfile.Profile()
    profiler.enable()
    for server in servers:
        source.graph_builder.build(server)
    profiler.disable()
    out.write("== graph build ==\n")
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# -- driver ------------------------------------------------------------------------------------


def run_worker(path: Path, seed: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", str(path), "--seed", str(seed)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"worker for {path} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=SERVERS)
    parser.add_argument("--tools", type=int, default=TOOLS)
    parser.add_argument("--fractions", default="0.1,0.5,1", help="comma-separated shares")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile loading and graph building, largest size"
    )
    parser.add_argument("--keep", metavar="DIR", help="write the catalogs here and keep them")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(measure(args.worker, args.seed)))
        return

    try:
        check_spread(args.servers, args.tools)
    except ValueError as exc:
        parser.error(str(exc))
    fractions = [float(f) for f in args.fractions.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        rows = CatalogGenerator(args.seed).rows(args.servers, args.tools)
        generate_s = time.perf_counter() - start
        results = []
        for fraction in fractions:
            count = max(1, round(fraction * len(rows)))
            path = folder / f"mcp_servers-{round(fraction * 100)}pct.jsonl"
            with path.open("w", encoding="utf-8") as fh:
                for row in rows[:count]:
                    fh.write(json.dumps(row) + "\n")
            result = run_worker(path, args.seed)
            result["fraction"] = fraction
            results.append(result)
        profile = profile_phases(str(path), args.seed) if args.profile else None

    full = results[-1]
    small = results[0]
    growth = {
        key: full[key] / small[key] if small[key] > 0 else float("nan")
        for phase in ("load", "graph", "walks", "total")
        for key in (f"{phase}_s", f"{phase}_cpu_s")
    }
    ideal = full["tools"] / small["tools"]
    summary = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}",
        "catalog_generation_s": generate_s,
        "sizes": results,
        "target_s": TARGET_S,
        "within_target": full["total_s"] < TARGET_S,
        "growth_ratio": growth,
        "ideal_growth_ratio": ideal,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"catalog: {args.servers} servers, {args.tools} tools (seed {args.seed}), "
            f"generated in {generate_s:.1f}s; {summary['machine']}"
        )
        header = (
            "share",
            "servers",
            "tools",
            "max/srv",
            "edges",
            "chains",
            "load s",
            "graph s",
            "walks s",
            "total s",
            "CPU s",
            "peak RSS MiB",
            "+RSS MiB",
        )
        print("  ".join(f"{h:>9}" for h in header))
        for r in results:
            cells = (
                f"{r['fraction']:.0%}",
                r["servers"],
                r["tools"],
                r["largest_server"],
                r["edges"],
                r["chains"],
                f"{r['load_s']:.2f}",
                f"{r['graph_s']:.2f}",
                f"{r['walks_s']:.2f}",
                f"{r['total_s']:.2f}",
                f"{r['total_cpu_s']:.2f}",
                f"{r['peak_rss_mib']:.0f}",
                f"{r['rss_growth_mib']:.0f}",
            )
            print("  ".join(f"{c:>9}" for c in cells))
        verdict = "within" if summary["within_target"] else "OVER"
        print(
            f"total at {full['fraction']:.0%}: {full['total_s']:.1f}s wall "
            f"({full['total_cpu_s']:.1f}s CPU), {verdict} the {TARGET_S:.0f}s target"
        )
        print(
            f"growth {full['fraction']:.0%}/{small['fraction']:.0%}: total "
            f"{growth['total_s']:.1f}x (linear: {ideal:.1f}x); load {growth['load_s']:.1f}x, "
            f"graph {growth['graph_s']:.1f}x, walks {growth['walks_s']:.1f}x; CPU time: total "
            f"{growth['total_cpu_s']:.1f}x, load {growth['load_cpu_s']:.1f}x, graph "
            f"{growth['graph_cpu_s']:.1f}x, walks {growth['walks_cpu_s']:.1f}x"
        )
    if profile:
        print(profile)


if __name__ == "__main__":
    main()
