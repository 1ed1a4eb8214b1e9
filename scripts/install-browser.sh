#!/usr/bin/env bash
# System packages for the browser tests (tests/e2e/test_leaderboard_page.py): Debian's chromium, driven by the
# `playwright` Python package with executable_path=/usr/bin/chromium (never `playwright install`).
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends chromium
fi
/usr/bin/chromium --version
