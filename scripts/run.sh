#!/usr/bin/env bash
# The main job on the embedded default: set up, then run the whole training pipeline locally
# on the vendored AI4I 2020 data (no cluster, no cloud account). Extra args go to `shopfloor run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/shopfloor run --summary runs/summary.json "$@"
