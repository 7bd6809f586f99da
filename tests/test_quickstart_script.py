"""scripts/quickstart.sh on a machine without bubblewrap: it installs it (apt-get, as root or
through ``sudo -n``) or stops before any work with the one command that fixes it.

bwrap cannot be uninstalled here, so each test runs the script's own functions (the script only
defines them when sourced) with a PATH that lacks bwrap. Where the script installs bubblewrap, a
package manager cannot run in a test (it would change this machine and need the network): a
stand-in ``apt-get`` records its arguments and, on ``install``, puts the real bwrap on that
PATH, as the Debian package would."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "quickstart.sh"
BASH = shutil.which("bash") or "/bin/bash"


def bin_dir(tmp_path: Path, *programs: str) -> Path:
    """A PATH directory holding only ``programs`` (links to the real ones)."""
    path = tmp_path / "bin"
    path.mkdir(exist_ok=True)
    for program in programs:
        real = shutil.which(program)
        assert real, f"{program} is needed by this test"
        (path / program).symlink_to(real)
    return path


def run_function(path: Path, call: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, "-c", f'source "{SCRIPT}"; {call}'],
        capture_output=True,
        text=True,
        env={"PATH": str(path), "HOME": os.environ.get("HOME", "/tmp"), **env},
        timeout=60,
    )


def test_the_script_is_valid_bash_and_installs_the_plots_extra():
    assert subprocess.run([BASH, "-n", str(SCRIPT)]).returncode == 0
    text = SCRIPT.read_text()
    assert "pip install -q --no-compile -e '.[plots]'" in text


def test_without_bwrap_or_a_package_manager_it_stops_with_the_fix(tmp_path):
    result = run_function(bin_dir(tmp_path), "ensure_bwrap")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == (
        "quickstart: the sandbox needs the bwrap program (bubblewrap), which is not installed."
    )
    assert lines[-1].strip() == (
        "install your system's bubblewrap package (https://github.com/containers/bubblewrap)"
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="the apt-get branch without sudo runs as root")
@pytest.mark.parametrize("lists", ["present", "stale"])
def test_as_root_it_installs_bubblewrap_with_apt_get(tmp_path, lists):
    """apt-get install first; the package lists are refreshed only when that fails."""
    path = bin_dir(tmp_path, "env")
    log = tmp_path / "apt-get.log"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        pytest.skip("bwrap is not installed here")
    updated = tmp_path / "updated"
    if lists == "present":
        updated.touch()
    apt = path / "apt-get"
    apt.write_text(
        "#!/bin/sh\n"
        f'echo "$DEBIAN_FRONTEND $*" >> "{log}"\n'
        f'case "$1" in update) : > "{updated}" ;; install) [ -e "{updated}" ] || exit 100;\n'
        f'  {shutil.which("ln")} -s "{bwrap}" "{path}/bwrap" ;; esac\n'
    )
    apt.chmod(0o755)
    result = run_function(path, "ensure_bwrap && command -v bwrap")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(path / "bwrap")
    install = "noninteractive install -y -qq bubblewrap"
    assert log.read_text().splitlines() == (
        [install] if lists == "present" else [install, "noninteractive update -qq", install]
    )
    assert "installing bubblewrap" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the apt-get branch without sudo runs as root")
def test_when_apt_get_fails_it_stops_with_the_apt_get_command(tmp_path):
    path = bin_dir(tmp_path, "env")
    apt = path / "apt-get"
    apt.write_text("#!/bin/sh\necho 'E: Unable to locate package bubblewrap' >&2\nexit 100\n")
    apt.chmod(0o755)
    result = run_function(path, "ensure_bwrap")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].strip() == "apt-get install -y bubblewrap"


def test_the_whole_script_stops_before_any_work(tmp_path):
    """Run as a user would: no virtualenv is made, nothing is installed or run."""
    path = bin_dir(tmp_path, "dirname", "python3")
    venv = tmp_path / "venv"
    result = subprocess.run(
        [BASH, str(SCRIPT), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env={"PATH": str(path), "ASTRA_VENV": str(venv), "HOME": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "nothing was done" in result.stderr
    assert not venv.exists() and not (tmp_path / "run").exists()
