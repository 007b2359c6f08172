#!/usr/bin/env bash
# Sets up (first run only) and launches Distill Studio on the embedded local backend.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python app.py "$@"
