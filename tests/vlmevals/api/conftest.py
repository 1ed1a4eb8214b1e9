"""The evals API as users reach it: Airflow's own api-server app (create_app) with our plugin mounted at
/api/evals, real SimpleAuthManager users (admin, op, viewer) and real JWTs from POST /auth/token, our tables in
the test PostgreSQL and Airflow's metadata DB (DAG runs are really created).

During each test `eval_run` is paused in Airflow's metadata DB, so that the scheduler of a live stack started
by other tests of this session leaves the DAG runs created here alone; they are deleted after the test.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.airflow_state import set_eval_run_paused

USERS = {"admin": "admin", "op": "op", "viewer": "viewer"}


def _api_dag_runs() -> set[str]:
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as s:
        return set(
            s.scalars(select(DagRun.run_id).where(DagRun.dag_id == "eval_run", DagRun.run_id.like("evals_api__%")))
        )


def _delete_dag_runs(run_ids: set[str]) -> None:
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    if not run_ids:
        return
    with create_session() as s:
        s.execute(
            delete(DagRun)
            .where(DagRun.dag_id == "eval_run", DagRun.run_id.in_(run_ids))
            .execution_options(synchronize_session=False)
        )


@pytest.fixture(scope="session")
def airflow_api(airflow_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Airflow's FastAPI app with the plugin mounted, as `airflow api-server` builds it."""
    pw = tmp_path_factory.mktemp("auth") / "passwords.json"
    pw.write_text(json.dumps(USERS))
    os.environ.update(
        {
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{u}" for u in USERS),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(pw),
        }
    )
    os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(48))
    if (
        set_eval_run_paused(True) is None
    ):  # eval_run never parsed into this metadata DB yet: do what the dag-processor does
        res = subprocess.run(
            [sys.executable, "-m", "airflow", "dags", "reserialize"],
            capture_output=True,
            text=True,
            env={**os.environ, "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False"},
        )
        assert res.returncode == 0, res.stderr[-3000:]
    assert set_eval_run_paused(False) is not None, "eval_run not serialised"
    from airflow.api_fastapi.app import create_app
    from vlmevals.core.settings import get_settings
    from vlmevals.vlmevalkit import registry

    registry.warm_in_background(get_settings()).join()  # as `vlmevals up` does while Airflow starts
    yield create_app()


@pytest.fixture()
def paused_eval_run(airflow_api) -> Iterator[None]:
    """eval_run paused during the test, the DAG runs it created deleted after it, then unpaused again."""
    before_runs = _api_dag_runs()
    was = set_eval_run_paused(True)
    try:
        yield
    finally:
        _delete_dag_runs(_api_dag_runs() - before_runs)
        set_eval_run_paused(bool(was))


@pytest.fixture(scope="session")
def tokens(airflow_api) -> dict[str, str]:
    from fastapi.testclient import TestClient

    out = {}
    with TestClient(airflow_api) as c:
        for user, password in USERS.items():
            r = c.post("/auth/token", json={"username": user, "password": password})
            assert r.status_code == 201, r.text
            out[user] = r.json()["access_token"]
    return out


class Clients:
    """One TestClient per role (and one without credentials), all on the same app."""

    def __init__(self, app, tokens: dict[str, str]) -> None:
        from fastapi.testclient import TestClient

        self.tokens = tokens
        self.anon = TestClient(app, raise_server_exceptions=False)
        self.by_role = {
            u: TestClient(app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {t}"})
            for u, t in tokens.items()
        }

    @property
    def admin(self):
        return self.by_role["admin"]

    @property
    def op(self):
        return self.by_role["op"]

    @property
    def viewer(self):
        return self.by_role["viewer"]


@pytest.fixture()
def clients(airflow_api, tokens, seeded, paused_eval_run) -> Clients:
    """Clients on a freshly seeded catalogue (tables are truncated after each test by `engine`)."""
    return Clients(airflow_api, tokens)


def add_run(
    engine,
    task: str,
    model: str,
    status: str = "completed",
    score: float | None = None,
    finished_days_ago: float | None = 0,
    **extra,
) -> int:
    """Store a run row directly (as the DAG would leave it) and return its id."""
    import datetime as dt

    from vlmevals.db.engine import session_scope
    from vlmevals.runs import lifecycle as runs
    from vlmevals.runs.board_entries import refresh_runs

    with session_scope(engine) as s:
        # created queued, so exempt from the one-active-run index until its real status is set
        run = runs.create_run(s, task, model, triggered_by="airflow_rest", forced=True)
        run.status, run.forced = status, extra.pop("forced", False)
        if status in ("completed", "failed", "cancelled") and finished_days_ago is not None:
            run.finished_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=finished_days_ago)
        run.primary_metric = score
        for k, v in extra.items():
            setattr(run, k, v)
        s.flush()
        refresh_runs(s.connection(), [run.id])  # what the status transition does (runs.board_entries)
        return run.id


def add_model(client, name: str, params_b: float | None = None) -> None:
    r = client.post(
        "/api/evals/models",
        json={"name": name, "display_name": name.upper(), "vlmeval_model": "InternVL2_5-2B", "params_b": params_b},
    )
    assert r.status_code == 201, r.text


def add_server(engine, model: str, state: str = "ready", checkpoint_step: int | None = None, **extra) -> int:
    """Store a model server row directly (as its `model_server` task would leave it) and return its id; a
    `ready` one has been started (its endpoint, pid and devices filled in) unless told otherwise."""
    import datetime as dt

    from sqlalchemy import select
    from vlmevals.core.constants import MODEL_SERVER_DAG_ID
    from vlmevals.db.engine import session_scope
    from vlmevals.db.models import Checkpoint, Model, ModelServer

    now = dt.datetime.now(dt.UTC)
    with session_scope(engine) as s:
        model_id = s.scalars(select(Model.id).where(Model.name == model)).one()
        checkpoint_id = None
        if checkpoint_step is not None:
            cp = Checkpoint(model_id=model_id, step=checkpoint_step, weights_path=f"/ckpt/step-{checkpoint_step}")
            s.add(cp)
            s.flush()
            checkpoint_id = cp.id
        row: dict = {
            "model_id": model_id,
            "checkpoint_id": checkpoint_id,
            "state": state,
            "engine": "vllm",
            "engine_version": "0.11.0",
            "args": ["--max-model-len", "8192"],
            "gpus": 2,
            "linger_s": 300.0,
            "startup_timeout_s": 900.0,
            "served_model_name": model,
            "dag_id": MODEL_SERVER_DAG_ID,
        }
        if state != "starting":
            port = 18000 + len(model)
            row |= {
                "host": "127.0.0.1",
                "port": port,
                "base_url": f"http://127.0.0.1:{port}/v1",
                "worker": "gpu-node-1",
                "pid": 4242,
                "devices": "0,1",
                "loads": 1,
                "started_at": now - dt.timedelta(minutes=10),
                "ready_at": now - dt.timedelta(minutes=9),
                "heartbeat_at": now,
            }
        if state in ("stopped", "failed"):
            row["stopped_at"] = now - dt.timedelta(minutes=1)
        server = ModelServer(**(row | extra))
        s.add(server)
        s.flush()
        server.dag_run_id = server.dag_run_id or f"server-{server.id}"
        return server.id
