#!/usr/bin/env bash
# The test command: set up everything (venv, tools, services the tests start themselves),
# then lint, type-check and run the test suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
if [ -x scripts/install-tools.sh ]; then scripts/install-tools.sh; fi
if [ -x scripts/install-services.sh ]; then scripts/install-services.sh; fi
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; exec .venv/bin/pytest "$@"
