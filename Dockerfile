# The image of every service in docker-compose.yaml: Airflow 3 + VLMEvalKit + this project, with the runtime
# dependencies only (pyproject.toml's [project.dependencies], exact versions from constraints.txt; the `dev` group of
# tests and lints stays out). PyPI's Linux torch wheel carries CUDA, so the same image
# serves CPU and GPU workers (GPUs come from the NVIDIA container runtime: deploy.resources.reservations).
FROM python:3.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/project/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/airflow/project/plugins \
    PYTHONPATH=/opt/airflow/project/include

# curl: healthchecks; dumb-init: signals reach Celery's task processes; libgl/glib: opencv (VLMEvalKit); git:
# toolkit commit ids when VLMEVAL_ROOT points at a checkout
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl dumb-init git libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 50000 --gid 0 --home-dir /opt/airflow --create-home --shell /bin/bash airflow

WORKDIR /opt/airflow/project
COPY pyproject.toml constraints.txt ./
# The dependencies before the code, so that a code change does not reinstall them: torch first, exactly pinned (as
# scripts/setup.sh does), then [project.dependencies] read from pyproject.toml, plus the optional extras named in
# EXTRAS (comma-separated, e.g. `trackers` for EVALS_EXPORTERS; compose passes EVALS_IMAGE_EXTRAS)
ARG EXTRAS=""
RUN pip install -c constraints.txt torch torchvision \
    && EXTRAS="$EXTRAS" python -c 'import os, tomllib; p = tomllib.load(open("pyproject.toml", "rb")); \
extras = [e for e in os.environ["EXTRAS"].split(",") if e]; \
print(*p["project"]["dependencies"], *(d for e in extras for d in p["project"]["optional-dependencies"][e]), sep="\n")' \
        > /tmp/runtime.txt \
    && pip install -r /tmp/runtime.txt -c constraints.txt \
    && rm /tmp/runtime.txt

COPY include ./include
COPY dags ./dags
COPY plugins ./plugins
COPY sql ./sql
COPY docker ./docker
RUN pip install --no-deps -e . \
    && mkdir -p /data/outputs /data/LMUData /data/models /opt/airflow/logs /opt/airflow/auth \
    && chown -R 50000:0 /data /opt/airflow \
    && chmod -R g+rwX /data /opt/airflow

USER 50000
EXPOSE 8080
ENTRYPOINT ["/usr/bin/dumb-init", "--", "airflow"]
CMD ["version"]
