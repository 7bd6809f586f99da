from __future__ import annotations

import pytest
from conftest import astra

from astra_core.config import STAGES, load_config, parse_config
from astra_core.errors import ConfigError, UnknownComponentError
from astra_core.plugins import load_plugins

GOOD = """
[run]
name = "cfg-test"
seed = 7

[synth-arenas]
limit = 5
[synth-arenas.generator]
name = "example-arithmetic"
count = 12
"""


@pytest.fixture(scope="module")
def plugins():
    return load_plugins()


def test_good_config_resolves_options_to_typed_objects(write_config, plugins):
    config = load_config(write_config(GOOD)).resolve(plugins.registry)
    section = config.stages["synth-arenas"]
    assert section.limit == 5
    assert section.generator.name == "example-arithmetic"
    assert section.generator.options.count == 12
    assert config.stage_order == ("synth-arenas",)
    assert len(config.stage_hash("synth-arenas")) == 16


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("[rnu]\nseed = 1\n", "rnu", "unknown section 'rnu'"),
        ("[run]\nsede = 1\n", "run.sede", "unknown option 'sede'"),
        ('[run]\nseed = "one"\n', "run.seed", "expected int"),
        ('[run]\nstages = ["synth-arena"]\n', "run.stages[0]", "unknown stage 'synth-arena'"),
        (
            '[synth-arenas]\nlimt = 3\ngenerator = "x"\n',
            "synth-arenas.limt",
            "unknown option 'limt'",
        ),
        ("[synth-arenas]\nlimit = 3\n", "synth-arenas", "missing required option 'generator'"),
        ("[synth-arenas]\ngenerator = 3\n", "synth-arenas.generator", "component name"),
    ],
)
def test_shape_errors_carry_file_and_key_path(write_config, text, key, fragment):
    path = write_config(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: [{key}]"), message
    assert fragment in message


@pytest.mark.parametrize(
    ("table", "key", "fragment"),
    [
        (
            'name = "example-arithmetic"\ncuont = 3',
            "synth-arenas.generator.cuont",
            "the options here are: count",
        ),
        (
            'name = "example-arithmetic"\ncount = "3"',
            "synth-arenas.generator.count",
            "expected int",
        ),
        (
            'name = "example-arithmetic"\ncount = true',
            "synth-arenas.generator.count",
            "expected int",
        ),
    ],
)
def test_component_option_errors(write_config, plugins, table, key, fragment):
    path = write_config(f"[synth-arenas.generator]\n{table}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path).resolve(plugins.registry)
    assert f"[{key}]" in str(info.value) and fragment in str(info.value)


def test_unknown_component_lists_the_names_available(write_config, plugins):
    path = write_config('[synth-arenas]\ngenerator = "example-arithmatic"\n')
    with pytest.raises(UnknownComponentError) as info:
        load_config(path).resolve(plugins.registry)
    assert "unknown environment_generator 'example-arithmatic'; available:" in str(info.value)
    assert "example-arithmetic" in str(info.value)


def test_config_check_command(write_config):
    ok = astra("config", "check", str(write_config(GOOD)))
    assert ok.returncode == 0, ok.stderr
    assert "ok (synth-arenas)" in ok.stdout
    bad = astra("config", "check", str(write_config("[run]\nseeed = 1\n", name="bad.toml")))
    assert bad.returncode == 2
    assert "bad.toml: [run.seeed] unknown option" in bad.stderr
    missing = astra("config", "check", "/nonexistent/run.toml")
    assert missing.returncode == 2 and "cannot read config" in missing.stderr


def test_invalid_toml_names_the_file(write_config):
    path = write_config("[run\nseed=1")
    with pytest.raises(ConfigError, match=f"{path}: not valid TOML"):
        load_config(path)


def test_stage_order_is_canonical():
    config = parse_config({"eval": {"evaluator": "x"}, "synth-arenas": {"generator": "y"}})
    assert config.stage_order == ("synth-arenas", "eval")
    assert STAGES.index("synth-arenas") < STAGES.index("eval")


def test_option_helpers_validate_and_name_the_key():
    import attrs

    from astra_core.options import at_least, greater_than, option, structure_options, within

    @attrs.frozen
    class Options:
        count: int = option("how many", 1, validator=at_least(1))
        rate: float = option("a rate", 0.5, validator=greater_than(0))
        share: float = option("a share", 0.2, validator=within(0, 1))
        limit: int | None = option("unset: no limit", None, validator=at_least(0))

    built = structure_options(Options, {"count": 3, "share": 1.0}, key="gen", file="run.toml")
    assert (built.count, built.rate, built.share, built.limit) == (3, 0.5, 1.0, None)
    assert attrs.fields(Options).count.metadata["help"] == "how many"
    for table, message in [
        ({"count": 0}, "count must be >= 1, got 0"),
        ({"rate": 0.0}, "rate must be > 0, got 0.0"),
        ({"share": 1.5}, r"share must be within \[0, 1\], got 1.5"),
        ({"limit": -1}, "limit must be >= 0, got -1"),
    ]:
        with pytest.raises(ConfigError, match=message) as info:
            structure_options(Options, table, key="gen", file="run.toml")
        assert "run.toml" in str(info.value) and "gen" in str(info.value)
