#!/usr/bin/env bash
# System services the tests start themselves: Debian's chromium, for the headless browser test
# of the HTML run report (tests/integration/test_report_browser.py). Idempotent: does nothing
# when chromium is already installed.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
command -v chromium >/dev/null
