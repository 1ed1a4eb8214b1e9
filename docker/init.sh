#!/usr/bin/env bash
# airflow-init: everything the other services need before they start. Idempotent (runs on every `up`).
set -euo pipefail

echo "== volumes owned by AIRFLOW_UID ${AIRFLOW_UID:-50000}"
mkdir -p /data/outputs /data/LMUData /data/models /opt/airflow/logs /opt/airflow/auth
chown -R "${AIRFLOW_UID:-50000}:0" /data/outputs /data/LMUData /data/models /opt/airflow/logs /opt/airflow/auth

run() { gosu_uid=${AIRFLOW_UID:-50000}; setpriv --reuid "$gosu_uid" --regid 0 --clear-groups "$@"; }

echo "== Airflow metadata DB"
run airflow db migrate
echo "== our tables (Alembic, sql/)"
run vlmevals db upgrade
echo "== catalogue"
run vlmevals seed
echo "== VLMEvalKit's registry, cached so that no API request pays import vlmeval; the catalogue's datasets"
run vlmevals datasets list || echo "VLMEvalKit's registry could not be read here; the API reads it on its first name check"
echo "== pool gpu: ${EVALS_GPU_POOL_SLOTS} slots (one per GPU across all GPU workers)"
run airflow pools set gpu "${EVALS_GPU_POOL_SLOTS}" "one slot per GPU of all GPU workers"
echo "== admin user ${EVALS_ADMIN_USER}"
umask 077
python - <<'PY'
import json, os
path = "/opt/airflow/auth/passwords.json"
with open(path, "w") as fh:
    json.dump({os.environ["EVALS_ADMIN_USER"]: os.environ["EVALS_ADMIN_PASSWORD"]}, fh)
PY
chown "${AIRFLOW_UID:-50000}:0" /opt/airflow/auth/passwords.json
echo "== init done"
