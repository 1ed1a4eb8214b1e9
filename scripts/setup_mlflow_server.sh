#!/usr/bin/env bash
# A real MLflow tracking server for the exporter tests (tests/vlmevals/exports) and local use, in a virtualenv of its
# own (.local/tools/mlflow-server): the full `mlflow` package pins pyarrow<26, which Airflow's resolved set cannot
# take; the product itself only needs the client (mlflow-skinny, the `trackers` extra). Idempotent: a stamp names the
# version installed, so a second run does nothing. scripts/test.sh runs it; about 2 min on first run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.local/tools/mlflow-server
MLFLOW_VERSION=${MLFLOW_VERSION:-3.17.2}
stamp=$VENV/.installed-mlflow-$MLFLOW_VERSION
if [ ! -f "$stamp" ] || [ ! -x "$VENV/bin/mlflow" ]; then
  PY=${PYTHON:-python3.11}
  echo "installing mlflow==$MLFLOW_VERSION (its server) into $VENV (first run: about 2 min)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q "mlflow==$MLFLOW_VERSION"
  touch "$stamp"
fi
"$VENV/bin/mlflow" --version
