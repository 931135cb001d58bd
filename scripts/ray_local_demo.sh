#!/usr/bin/env bash
# A Ray deployment on this machine, checked end to end: a throwaway PostgreSQL, a Ray head and two worker
# nodes (`ray start`), four sources (three videos and a live MJPEG camera, made from the packaged sample photo)
# ingested through the cluster and in one process; prints both totals per source and exits 1 when they differ
# (2 when something could not start, 130 on Ctrl-C). Everything started is stopped and deleted at the end.
#   bash scripts/ray_local_demo.sh                 # head + 2 worker nodes
#   bash scripts/ray_local_demo.sh --workers 3 --no-progress
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -c "import moodlens, ray, psycopg" 2>/dev/null || .venv/bin/python -m pip install -q -e '.[postgres,ray]'
exec .venv/bin/python -m moodlens.distributed.fleet_check "$@"
