"""Runs through the CLI and through the library, with a third-party plugin choosing the stage."""

from __future__ import annotations

import json

from conftest import PLUGIN_FILES, astra

from astra_core import hookimpl, run
from astra_core.config import parse_config
from astra_core.plugins import load_plugins
from astra_core.records import Arena
from astra_core.stages import SynthArenasStage
from astra_core.store import RecordStore

EXAMPLE = """
[run]
name = "third-party"
seed = 11
[synth-arenas.generator]
name = "example-arithmetic"
count = 30
"""


def read_arenas(stage_dir):
    return list(RecordStore(stage_dir, Arena).iter_records())


def test_third_party_generator_chosen_by_name_decides_the_output(write_config, tmp_path):
    out = tmp_path / "out"
    result = astra("run", str(write_config(EXAMPLE)), "--out", str(out))
    assert result.returncode == 0, result.stderr
    arenas = read_arenas(out / "synth-arenas")
    assert arenas and all(a.tool_names == ("subtract",) for a in arenas)
    # its astra_filter_record hook dropped every negative answer, and the manifest says why
    assert all(not a.answer.startswith("-") for a in arenas)
    manifest = json.loads((out / "synth-arenas" / "manifest.json").read_text())
    assert manifest["dropped"]["example: negative answer"] == 30 - len(arenas)
    assert {
        "name": "example",
        "distribution": "astra-plugin-example",
        "version": "0.3.1",
    } in manifest["plugins"]
    report = json.loads((out / "report.json").read_text())
    assert report["stages"][0]["stage"] == "synth-arenas" and report["stages"][0]["total"] == len(
        arenas
    )
    assert "| synth-arenas | complete |" in (out / "report.md").read_text()
    assert f"{len(arenas)} records" in result.stdout


def test_stages_option_and_missing_section(write_config, tmp_path):
    cfg = write_config(EXAMPLE)
    result = astra("run", str(cfg), "--out", str(tmp_path / "o"), "--stages", "train-sft")
    assert result.returncode == 2
    assert "has no [train-sft] section" in result.stderr
    one = astra("synth", "arenas", str(cfg), "--out", str(tmp_path / "o2"), "-q")
    assert one.returncode == 0 and one.stdout == ""
    assert (tmp_path / "o2" / "synth-arenas" / "manifest.json").exists()


def test_library_run_fires_event_hooks(tmp_path):
    events: list[tuple] = []

    class Observer:
        @hookimpl
        def astra_stage_start(self, stage):
            events.append(("start", stage))

        @hookimpl
        def astra_record_kept(self, stage, record):
            events.append(("kept", record.id))

        @hookimpl
        def astra_record_dropped(self, stage, record_id, reason):
            events.append(("dropped", reason))

        @hookimpl
        def astra_stage_end(self, stage, summary):
            events.append(("end", summary.total))

        @hookimpl
        def astra_run_end(self, summaries):
            events.append(("run_end", len(summaries)))

    plugins = load_plugins(objects=[("observer", Observer())])
    config = parse_config(
        {
            "run": {"seed": 2},
            "synth-arenas": {"generator": {"name": "example-arithmetic", "count": 12}},
        }
    )
    report = run(config, tmp_path, plugins=plugins, quiet=True)
    summary = report.stage("synth-arenas")
    assert events[0] == ("start", "synth-arenas")
    assert events[-2] == ("end", summary.total) and events[-1] == ("run_end", 1)
    assert sum(1 for e in events if e[0] == "kept") == summary.total
    assert sum(1 for e in events if e[0] == "dropped") == sum(summary.dropped.values())


def test_shards_split_the_work_and_merge_without_duplicates(write_config, tmp_path):
    cfg = write_config(
        EXAMPLE.replace('name = "example-arithmetic"', 'name = "slow-counter"').replace(
            "count = 30", "count = 30\ndelay_s = 0.0"
        )
        + f'\n[plugins]\nfiles = ["{PLUGIN_FILES / "slow_counter.py"}"]\n'
    )
    for i in range(2):
        assert (
            astra(
                "run", str(cfg), "--out", str(tmp_path / f"s{i}"), "--shard", f"{i}/2", "-q"
            ).returncode
            == 0
        )
    assert astra("run", str(cfg), "--out", str(tmp_path / "whole"), "-q").returncode == 0
    s0 = {a.id for a in read_arenas(tmp_path / "s0" / "synth-arenas")}
    s1 = {a.id for a in read_arenas(tmp_path / "s1" / "synth-arenas")}
    assert s0 and s1 and not s0 & s1
    merged = astra(
        "data",
        "merge",
        "--kind",
        "arena",
        str(tmp_path / "merged"),
        str(tmp_path / "s0" / "synth-arenas"),
        str(tmp_path / "s1" / "synth-arenas"),
        str(tmp_path / "s1" / "synth-arenas"),
    )
    assert merged.returncode == 0, merged.stderr
    ids = [a.id for a in read_arenas(tmp_path / "merged")]
    assert len(ids) == len(set(ids))
    assert set(ids) == {a.id for a in read_arenas(tmp_path / "whole" / "synth-arenas")}
    bad = astra("run", str(cfg), "--out", str(tmp_path / "x"), "--shard", "2/2")
    assert bad.returncode == 2 and "need 0 <= i < n" in bad.stderr


def test_stage_object_usable_alone(tmp_path):
    from astra_core.pipeline import prepare, run_stage

    config, plugins = prepare(
        parse_config({"synth-arenas": {"generator": {"name": "example-arithmetic", "count": 6}}})
    )
    summary = run_stage(
        SynthArenasStage(config.stages["synth-arenas"]), config, plugins, tmp_path, quiet=True
    )
    assert summary.status == "complete" and summary.total + sum(summary.dropped.values()) == 6
