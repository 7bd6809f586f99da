"""Plugin loading and validation: every failure stops start-up with one error naming the plugin."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
from conftest import PLUGIN_FILES, astra

from astra_core import hookimpl
from astra_core.errors import PluginError
from astra_core.plugins import load_plugins
from astra_core.protocols import KIND_PROTOCOLS, STAGE_KINDS
from astra_core.registry import ComponentBuilder


def fake_distribution(root: Path, dist: str, entry_points: str, module: str | None = None) -> Path:
    """An installed distribution on a path of its own: what ``pip install`` leaves behind."""
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[astra.plugins]\n{entry_points}\n")
    if module:
        (root / f"{module}.py").write_text("raise RuntimeError('plugin exploded at import')\n")
    return root


def test_bundled_plugins_cover_every_stage_kind():
    result = astra("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = json.loads(result.stdout)
    assert {"name", "distribution", "version", "hooks", "provides"} <= set(plugins[0])
    bundled = [p for p in plugins if p["distribution"] == "astra-agents"]
    provided = {kind for p in bundled for kind in p["provides"]}
    assert set(STAGE_KINDS) <= provided, f"missing: {set(STAGE_KINDS) - provided}"
    assert provided <= set(KIND_PROTOCOLS)
    for p in bundled:
        assert p["version"] and all(h.startswith("astra_") for h in p["hooks"])


def test_loading_the_plugins_imports_no_training_framework():
    """torch and transformers come with the component that uses them, not with the plugins:
    `astra plugins`, `config check` and every `--help` start in well under a second."""
    code = (
        "import sys\nfrom astra_core.plugins import load_plugins\nload_plugins()\n"
        "print(sorted(m for m in ('torch', 'transformers', 'accelerate') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_third_party_package_is_listed_with_its_distribution():
    plugins = {p["name"]: p for p in json.loads(astra("plugins", "--json").stdout)}
    example = plugins["example"]
    assert example["distribution"] == "astra-plugin-example"
    assert example["version"] == "0.3.1"
    assert example["provides"] == {
        "environment_generator": ["example-arithmetic"],
        "verifier": ["exact-answer"],
    }
    assert "astra_filter_record" in example["hooks"]


def test_table_output_lists_plugins():
    result = astra("plugins")
    assert result.returncode == 0
    assert "example" in result.stdout and "astra-plugin-example" in result.stdout


def test_entry_point_that_fails_to_import_names_plugin_and_distribution(tmp_path):
    root = fake_distribution(
        tmp_path, "astra-broken", "broken = astra_broken_mod", module="astra_broken_mod"
    )
    result = astra("plugins", env={"PYTHONPATH": str(root)})
    assert result.returncode == 2
    assert "plugin 'broken' (distribution astra-broken)" in result.stderr
    assert "plugin exploded at import" in result.stderr
    assert "Traceback" not in result.stderr
    # Disabling it lets everything else run.
    ok = astra("plugins", env={"PYTHONPATH": str(root), "ASTRA_DISABLE_PLUGINS": "broken"})
    assert ok.returncode == 0, ok.stderr


def test_one_file_plugin_that_fails_to_import():
    with pytest.raises(PluginError, match=r"plugin 'broken_import'.*ModuleNotFoundError"):
        load_plugins(files=[PLUGIN_FILES / "broken_import.py"])


def test_unknown_hook_is_an_error_naming_the_plugin():
    with pytest.raises(
        PluginError, match=r"plugin 'unknown_hook'.*unknown hook 'astra_register_verifers'"
    ):
        load_plugins(files=[PLUGIN_FILES / "unknown_hook.py"])


def test_hook_with_wrong_arguments_is_an_error():
    with pytest.raises(PluginError, match=r"plugin 'wrong_args'.*sandbox"):
        load_plugins(files=[PLUGIN_FILES / "wrong_args.py"])


def test_duplicate_component_name_names_both_plugins():
    with pytest.raises(PluginError) as info:
        load_plugins(files=[PLUGIN_FILES / "duplicate_name.py"])
    message = str(info.value)
    assert "plugin 'duplicate_name'" in message
    assert (
        "'exact-answer'" in message and "'example' (distribution astra-plugin-example)" in message
    )


def test_product_that_breaks_its_protocol_names_the_plugin():
    plugins = load_plugins(files=[PLUGIN_FILES / "bad_product.py"])
    with pytest.raises(
        PluginError, match=r"plugin 'bad_product'.*does not satisfy Verifier.*score"
    ):
        ComponentBuilder(plugins.registry).build("verifier", "not-a-verifier")


def test_class_instead_of_module_is_refused():
    class Plugin:
        @hookimpl
        def astra_register_verifiers(self, registry):
            pass

    with pytest.raises(PluginError, match="is a class"):
        load_plugins(objects=[("cls", Plugin)])
    # an instance is fine
    assert "inst" in [p.name for p in load_plugins(objects=[("inst", Plugin())]).describe()]


def test_disable_by_config_env_and_argument(write_config):
    plugins = load_plugins(disable=["example"])
    assert "example" not in [p.name for p in plugins.describe()]
    assert "exact-answer" not in plugins.registry.names("verifier")
    env_disabled = load_plugins(environ={"ASTRA_DISABLE_PLUGINS": "example, arenas"})
    names = [p.name for p in env_disabled.describe()]
    assert "example" not in names and "arenas" not in names
    cfg = write_config(
        '[plugins]\ndisable = ["example"]\n[synth-arenas]\ngenerator = "example-arithmetic"\n'
    )
    result = astra("config", "check", str(cfg))
    assert result.returncode == 2
    assert "unknown environment_generator 'example-arithmetic'" in result.stderr


def test_one_file_plugin_from_env_and_flag_adds_a_command():
    flag = astra("--plugin", str(PLUGIN_FILES / "hello_command.py"), "hello", "world")
    assert flag.returncode == 0, flag.stderr
    assert flag.stdout.strip() == "hello, world"
    env = astra("hello", "there", env={"ASTRA_PLUGINS": str(PLUGIN_FILES / "hello_command.py")})
    assert env.stdout.strip() == "hello, there"
    listed = json.loads(
        astra("--plugin", str(PLUGIN_FILES / "hello_command.py"), "plugins", "--json").stdout
    )
    local = next(p for p in listed if p["name"] == "hello_command")
    assert local["distribution"] is None and local["hooks"] == ["astra_add_commands"]


def test_registration_hook_that_raises_names_the_plugin():
    module = types.ModuleType("exploding")

    def astra_register_sandboxes(registry):
        raise ValueError("no sandbox today")

    module.astra_register_sandboxes = astra_register_sandboxes  # type: ignore[attr-defined]
    with pytest.raises(PluginError, match=r"plugin 'exploding'.*no sandbox today"):
        load_plugins(objects=[("exploding", module)])
