#!/usr/bin/env bash
# One command from a fresh clone: install, start PostgreSQL and Airflow, run the demo evaluation, print it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/vlmevals demo "$@"
