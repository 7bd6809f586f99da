"""Running stages: contexts, manifests, hooks and the run report."""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from astra_core.config import STAGES, RunConfig, load_config
from astra_core.context import StageContext
from astra_core.errors import AstraError, ConfigError
from astra_core.options import options_to_dict
from astra_core.plugins import PluginSet, load_plugins
from astra_core.preflight import check_preflight, problem_line
from astra_core.registry import ComponentBuilder
from astra_core.report import RunReport, StageSummary
from astra_core.stages import STAGE_CLASSES, Stage
from astra_core.store import MANIFEST, now_iso, read_manifest, write_json_atomic

__all__ = ["prepare", "run", "run_stage"]

log = logging.getLogger("astra")


def prepare(
    config: RunConfig | str | Path,
    *,
    plugins: PluginSet | None = None,
    plugin_files: Sequence[str | Path] = (),
    disable: Sequence[str] = (),
) -> tuple[RunConfig, PluginSet]:
    """Load a config and the plugins it needs, and validate the config against them."""
    if not isinstance(config, RunConfig):
        config = load_config(config)
    if plugins is None:
        plugins = load_plugins(
            disable=[*config.plugins.disable, *disable],
            files=[*config.plugin_files(), *plugin_files],
        )
    if not config.resolved:
        config = config.resolve(plugins.registry)
    return config, plugins


def _manifest(
    stage: str,
    config: RunConfig,
    plugins: PluginSet,
    *,
    status: str,
    started_at: str,
    previous: dict[str, Any] | None,
    shard: tuple[int, int],
    summary: StageSummary | None = None,
) -> dict[str, Any]:
    config_hash = config.stage_hash(stage)
    attempts = list((previous or {}).get("attempts", []))
    if not attempts or attempts[-1].get("started_at") != started_at:
        attempts.append({"started_at": started_at, "config_hash": config_hash})
    if summary is not None:
        attempts[-1].update(
            {"ended_at": summary.ended_at, "status": status, "written": summary.written}
        )
    data: dict[str, Any] = {
        "stage": stage,
        "status": status,
        "config_path": config.path,
        "config_hash": config_hash,
        "config": options_to_dict(config.stages[stage]),
        "seed": config.run.seed,
        "shard": {"index": shard[0], "count": shard[1]},
        "plugins": [
            {"name": p.name, "distribution": p.distribution, "version": p.version}
            for p in plugins.describe()
        ],
        "started_at": attempts[0]["started_at"],
        "ended_at": summary.ended_at if summary else None,
        "attempts": attempts,
    }
    if summary is not None:
        data["counts"] = {
            "written": summary.written,
            "existing": summary.existing,
            "total": summary.total,
        }
        data["dropped"] = summary.dropped
        data["metrics"] = summary.metrics
        if summary.error:
            data["error"] = summary.error
    return data


def run_stage(
    stage: Stage | str,
    config: RunConfig,
    plugins: PluginSet,
    out_dir: str | Path,
    *,
    quiet: bool = False,
    shard: tuple[int, int] = (0, 1),
    trackers: Sequence[Any] = (),
) -> StageSummary:
    """Run one stage of a resolved config, resuming what an earlier attempt wrote."""
    if isinstance(stage, str):
        if stage not in config.stages:
            raise ConfigError(f"the config has no [{stage}] section", path=config.path)
        stage = STAGE_CLASSES[stage](config.stages[stage])
    out = Path(out_dir)
    stage_dir = out / stage.name
    stage_dir.mkdir(parents=True, exist_ok=True)
    previous = read_manifest(stage_dir)
    config_hash = config.stage_hash(stage.name)
    if previous and previous.get("config_hash") != config_hash:
        log.warning(
            "%s: %s was written with a different config (hash %s, now %s); resuming into it. "
            "Use a new --out directory to start afresh.",
            stage.name,
            stage_dir,
            previous.get("config_hash"),
            config_hash,
        )
    started_at = now_iso()
    main = _writes_run_files()
    if main:
        write_json_atomic(
            stage_dir / MANIFEST,
            _manifest(
                stage.name,
                config,
                plugins,
                status="running",
                started_at=started_at,
                previous=previous,
                shard=shard,
            ),
        )
    store = stage.open_store(stage_dir)
    existing = len(store) if store is not None else 0
    if store is not None and store.repaired_bytes:
        log.warning(
            "%s: cut %d bytes of a half-written record left by an interrupted run",
            stage.name,
            store.repaired_bytes,
        )
    builder = ComponentBuilder(
        plugins.registry,
        seed=config.run.seed,
        workdir=stage_dir,
        hook=plugins.hook,
        file=config.path,
    )
    ctx = StageContext(
        stage.name,
        run_dir=out,
        builder=builder,
        store=store,
        hook=plugins.hook,
        quiet=quiet,
        shard=shard,
        trackers=trackers,
        options=stage.section,
    )
    plugins.hook.astra_stage_start(stage=stage.name, ctx=ctx)
    t0 = time.monotonic()
    error: str | None = None
    metrics: dict[str, Any] = {}
    try:
        metrics = dict(stage.execute(ctx))
    except AstraError as exc:
        error = str(exc)
        raise
    except BaseException as exc:
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        raise
    finally:
        # executors, servers and clients the stage built go before the manifest says it ended
        builder.close()
        if store is not None:
            store.close()
        summary = StageSummary(
            stage=stage.name,
            status="failed" if error else "complete",
            out_dir=str(stage_dir),
            written=store.written if store is not None else 0,
            existing=existing,
            total=len(store) if store is not None else 0,
            dropped=store.dropped_counts() if store is not None else {},
            metrics=metrics,
            started_at=started_at,
            ended_at=now_iso(),
            duration_s=round(time.monotonic() - t0, 3),
            error=error,
        )
        if main:
            write_json_atomic(
                stage_dir / MANIFEST,
                _manifest(
                    stage.name,
                    config,
                    plugins,
                    status=summary.status,
                    started_at=started_at,
                    previous=read_manifest(stage_dir),
                    shard=shard,
                    summary=summary,
                ),
            )
    plugins.hook.astra_stage_end(stage=stage.name, ctx=ctx, summary=summary)
    return summary


def run(
    config: RunConfig | str | Path,
    out_dir: str | Path,
    *,
    stages: Sequence[str] | None = None,
    plugins: PluginSet | None = None,
    plugin_files: Sequence[str | Path] = (),
    disable: Sequence[str] = (),
    quiet: bool = False,
    shard: tuple[int, int] = (0, 1),
    preflight: bool = True,
) -> RunReport:
    """Run the stages of ``config`` in order under ``out_dir`` and write the run report.

    ``stages`` picks a subset (it must be configured); by default the stages of ``[run] stages``
    or every stage that has a section. A run that was killed resumes where it stopped.
    First, unless ``preflight`` is false, every component those stages name is asked what it
    lacks on this machine (``astra_core.preflight``): a ``PreflightFailed`` listing each problem
    is raised before anything is written.
    """
    config, plugins = prepare(config, plugins=plugins, plugin_files=plugin_files, disable=disable)
    order = config.stage_order
    if stages is not None:
        for name in stages:
            if name not in STAGES:
                raise ConfigError(f"unknown stage {name!r}; stages are: {', '.join(STAGES)}")
            if name not in config.stages:
                raise ConfigError(
                    f"stage {name!r} was asked for but has no [{name}] section", path=config.path
                )
        order = tuple(s for s in STAGES if s in stages)
    if preflight:
        for problem in check_preflight(config, plugins.registry, stages=order):
            log.warning("%s", problem_line(problem))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    builder = ComponentBuilder(
        plugins.registry, seed=config.run.seed, workdir=out, file=config.path
    )
    trackers = [
        builder.build("tracker", spec, key=f"tracking.trackers[{i}]")
        for i, spec in enumerate(config.tracking.trackers)
    ]
    plugins.hook.astra_run_start(config=config, out_dir=str(out))
    summaries: list[StageSummary] = []
    try:
        for name in order:
            log.info("stage %s", name)
            summaries.append(
                run_stage(name, config, plugins, out, quiet=quiet, shard=shard, trackers=trackers)
            )
    finally:
        builder.close()  # the trackers
    ran = {s.stage for s in summaries}
    # A run of some stages keeps what earlier runs into the same directory reported for the rest.
    earlier = [s for s in _earlier_summaries(out) if s.stage not in ran]
    merged = sorted([*earlier, *summaries], key=lambda s: STAGES.index(s.stage))
    main = _writes_run_files()
    sections = [
        text
        for result in (
            plugins.hook.astra_report_sections(out_dir=str(out), summaries=merged) if main else []
        )
        for text in (result or [])
    ]
    report = RunReport(
        name=config.run.name,
        config=config.path,
        seed=config.run.seed,
        out_dir=str(out),
        stages=tuple(merged),
        sections=tuple(sections),
    )
    if main:
        report.write(out)
    plugins.hook.astra_run_end(config=config, out_dir=str(out), summaries=summaries)
    return report


def _writes_run_files() -> bool:
    """Whether this process writes the manifests and the report: under a distributed launch
    (``accelerate launch``, ``torchrun``: they set ``RANK``) every process runs each stage, a
    data-parallel trainer splitting the work, and the first alone writes the run's files."""
    return os.environ.get("RANK", "0") == "0"


def _earlier_summaries(out: Path) -> list[StageSummary]:
    path = out / "report.json"
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [
            StageSummary(**item) for item in data.get("stages", []) if item.get("stage") in STAGES
        ]
    except (ValueError, TypeError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return []
