#!/usr/bin/env bash
# Stop the Airflow components and the project's PostgreSQL started by demo.sh (data stays in .local/).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/vlmevals down
