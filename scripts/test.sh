#!/usr/bin/env bash
# The whole test suite (unit, integration, e2e, browser), as CI runs it. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's chromium for the browser test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "could not install chromium; the browser test will fail" >&2
fi
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -p no:warnings "$@"
