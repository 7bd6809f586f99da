#!/usr/bin/env bash
# Set up a virtualenv and run the offline quickstart (examples/quickstart.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${ASTRA_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
python -m pip install -q ${ASTRA_TORCH:-torch==2.13.0}
python -m pip install -q -e .
astra run examples/quickstart.toml --out "${1:-runs/quickstart}"
