#!/usr/bin/env bash
# The offline quickstart (examples/quickstart.toml) on a fresh machine. It installs:
#   1. bubblewrap (the `bwrap` program the sandbox runs tools in), when it is missing: with
#      apt-get, as root or through `sudo -n`; where it cannot, it stops before any other work
#      and prints the one command that installs it;
#   2. a virtualenv (.venv, or $ASTRA_VENV) with torch (the CPU wheel by default, $ASTRA_TORCH
#      picks another build) and ASTRA with its `plots` extra (matplotlib: reward-curve.png);
# then runs `astra run examples/quickstart.toml --out ${1:-runs/quickstart}`, which first checks
# that every component of the config finds what it needs (and says what is missing, if not).
set -euo pipefail

# The command that installs bubblewrap with this machine's package manager.
bwrap_install_hint() {
  local sudo=""
  [ "$EUID" -eq 0 ] || sudo="sudo "
  if command -v apt-get >/dev/null 2>&1; then
    echo "${sudo}apt-get install -y bubblewrap"
  elif command -v dnf >/dev/null 2>&1; then
    echo "${sudo}dnf install -y bubblewrap"
  elif command -v yum >/dev/null 2>&1; then
    echo "${sudo}yum install -y bubblewrap"
  elif command -v zypper >/dev/null 2>&1; then
    echo "${sudo}zypper install -y bubblewrap"
  elif command -v pacman >/dev/null 2>&1; then
    echo "${sudo}pacman -S --noconfirm bubblewrap"
  elif command -v apk >/dev/null 2>&1; then
    echo "${sudo}apk add bubblewrap"
  else
    echo "install your system's bubblewrap package (https://github.com/containers/bubblewrap)"
  fi
}

# Succeed when bwrap is on PATH, installing it with apt-get where that can be done without a
# password; otherwise print the command that fixes it and fail.
ensure_bwrap() {
  command -v bwrap >/dev/null 2>&1 && return 0
  local run=()
  if [ "$EUID" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      run=(sudo -n)
    else
      run=(none)
    fi
  fi
  if [ "${run[*]-}" != none ] && command -v apt-get >/dev/null 2>&1; then
    echo "quickstart: installing bubblewrap (the sandbox's bwrap program) with apt-get" >&2
    local apt=("${run[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
    # the package lists are refreshed only when the install cannot go ahead without them
    if "${apt[@]}" install -y -qq bubblewrap >&2 2>/dev/null ||
      { "${apt[@]}" update -qq >&2 && "${apt[@]}" install -y -qq bubblewrap >&2; }; then
      hash -r
      command -v bwrap >/dev/null 2>&1 && return 0
    fi
  fi
  echo "quickstart: the sandbox needs the bwrap program (bubblewrap), which is not installed." >&2
  echo "quickstart: nothing was done; install it, then run this script again:" >&2
  echo "    $(bwrap_install_hint)" >&2
  return 1
}

main() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  ensure_bwrap
  local venv="${ASTRA_VENV:-.venv}"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  # shellcheck disable=SC1091
  . "$venv/bin/activate"
  python -m pip install -q --upgrade pip
  # torch first, so that ASTRA's dependency on it keeps this build (see README). No bytecode
  # at install time: the modules a run imports are compiled as it imports them, a fraction of
  # the whole (17 s less to install here, 6 s more for the first import)
  # shellcheck disable=SC2086
  python -m pip install -q --no-compile ${ASTRA_TORCH:-torch==2.13.0}
  python -m pip install -q --no-compile -e '.[plots]'
  astra run examples/quickstart.toml --out "${1:-runs/quickstart}"
}

# Sourced (`source scripts/quickstart.sh`, as the tests do), it only defines the functions.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
