"""`EvalsDbHook`: our database's Connection is found wherever Airflow finds Connections, extras included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from vlmevals.airflow import hooks
from vlmevals.db.engine import get_engine

from tests.vlmevals.airflow.evals_db_sources import SOURCES, connection_only_in, evals_db_uri, run_python

PROBE = """
import json
from sqlalchemy import text
from vlmevals.airflow.hooks import engine_for_tasks, evals_db_url
with engine_for_tasks().connect() as conn:
    db = conn.scalar(text("select current_database()"))
print("PROBE " + json.dumps({"url": evals_db_url(), "db": db}))
"""


def test_the_url_keeps_the_connections_driver_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_EVALS_DB_SSL", "postgresql://u:p%40ss@db.example:5433/evals?sslmode=require")
    url = make_url(hooks.EvalsDbHook("evals_db_ssl").get_uri())
    assert (url.username, url.password, url.host, url.port, url.database) == ("u", "p@ss", "db.example", 5433, "evals")
    assert url.query == {"sslmode": "require"} and url.drivername.startswith("postgresql")


def test_without_the_connection_tasks_use_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALS_CONN_ID", "no_such_connection")
    from vlmevals.core.settings import get_settings

    get_settings.cache_clear()
    try:
        assert hooks.evals_db_url() is None
        assert hooks.engine_for_tasks() is get_engine()
    finally:
        monkeypatch.delenv("EVALS_CONN_ID")
        get_settings.cache_clear()


@pytest.mark.integration
@pytest.mark.parametrize("source", SOURCES)
def test_the_connection_is_found_in_the_metadata_db_or_a_secrets_backend(
    source: str, airflow_db: str, tmp_path: Path
) -> None:
    with connection_only_in(source, tmp_path) as env:
        if source == "metadata_db":  # what the api-server and the execution API (tasks' lookups) search
            env["_AIRFLOW_PROCESS_CONTEXT"] = "server"
        out = run_python(PROBE, env, timeout=300)
    found = json.loads(out.split("PROBE ", 1)[1])
    expected = make_url(evals_db_uri())
    assert make_url(found["url"]).database == expected.database and found["db"] == expected.database
