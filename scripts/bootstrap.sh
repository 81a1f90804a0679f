#!/usr/bin/env bash
# Set up everything shopfloor needs on a fresh machine (idempotent, safe to re-run):
# a Python 3.11+ virtualenv in .venv with the locked dependency set and shopfloor itself.
# Tool binaries and system services are installed by the scripts that need them.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "shopfloor needs Python >= 3.11 (found $("$PYTHON" --version 2>&1)); set PYTHON=..." >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "creating .venv"
  "$PYTHON" -m venv .venv
fi

stamp=.venv/.shopfloor-lock
want=$(cat requirements/lock.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing locked dependencies into .venv (first time: several minutes, ~2 GB)"
  log=.venv/bootstrap.log
  if ! { .venv/bin/python -m pip install --quiet --upgrade pip \
         && .venv/bin/python -m pip install --quiet -r requirements/lock.txt \
         && .venv/bin/python -m pip install --quiet --no-deps -e . ; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "dependency installation failed; full log: $log" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
