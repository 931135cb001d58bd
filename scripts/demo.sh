#!/usr/bin/env bash
# Set up moodlens in .venv and run the main job on the shipped model:
# analyse sample photos, then serve the web app on http://127.0.0.1:8000/ (Ctrl-C stops).
#   bash scripts/demo.sh              # demo + web app
#   bash scripts/demo.sh --no-serve   # demo only
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q -e .
serve=--serve
[ "${1:-}" = "--no-serve" ] && serve=--no-serve
exec .venv/bin/moodlens demo --out moodlens-demo "$serve"
