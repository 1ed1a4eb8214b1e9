#!/usr/bin/env bash
# A real MLflow tracking server for the exporter tests and local use, in a virtualenv of its own
# (.local/tools/mlflow-server): the full `mlflow` package pins pyarrow<26, which Airflow's resolved set cannot
# take; the product itself only needs the client (mlflow-skinny, in requirements.txt). About 2 min on first run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.local/tools/mlflow-server
MLFLOW_VERSION=${MLFLOW_VERSION:-3.17.2}
if [ ! -x "$VENV/bin/mlflow" ] || ! "$VENV/bin/mlflow" --version | grep -q "$MLFLOW_VERSION"; then
  python3.11 -m venv "$VENV"
  "$VENV/bin/pip" install -q "mlflow==$MLFLOW_VERSION"
fi
"$VENV/bin/mlflow" --version
