"""Our database as an Airflow Connection (`evals_db`, or EVALS_CONN_ID), for DAG tasks.

`EvalsDbHook` is the Postgres provider's hook, so the Connection is resolved wherever Airflow resolves
Connections: an `AIRFLOW_CONN_EVALS_DB` environment variable, the metadata database (UI or
`airflow connections add`), or a secrets backend (Vault, cloud secret managers, a local file).
Without such a Connection tasks use DATABASE_URL, as the plugin and the CLI do.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.providers.postgres.hooks.postgres import PostgresHook
from airflow.sdk.exceptions import AirflowNotFoundException
from sqlalchemy import Engine

from vlmevals.core.settings import get_settings
from vlmevals.db.engine import get_engine

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

log = logging.getLogger(__name__)


class EvalsDbHook(PostgresHook):
    """The Postgres hook on our tables' Connection; its URL keeps the Connection's extras (e.g. `sslmode`)."""

    default_conn_name = "evals_db"
    hook_name = "vlmevals database"

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(postgres_conn_id=conn_id or get_settings().airflow_conn_id, **kwargs)

    @property
    def sqlalchemy_url(self) -> URL:
        """PostgresHook's URL, plus the extras its own `get_conn` passes to the driver (the URL drops them)."""
        url: URL = super().sqlalchemy_url
        extras = {k: str(v) for k, v in self.connection.extra_dejson.items() if k not in self.ignored_extra_options}
        return url.update_query_dict(extras) if extras else url


def evals_db_url(conn_id: str | None = None) -> str | None:
    """The SQLAlchemy URL of our database's Connection, or None when Airflow knows no such Connection."""
    try:
        return str(EvalsDbHook(conn_id).get_uri())
    except AirflowNotFoundException:
        return None


def engine_for_tasks() -> Engine:
    """The engine a DAG task uses: the Airflow Connection EVALS_CONN_ID if Airflow resolves it, else DATABASE_URL."""
    url = evals_db_url()
    if url is None:
        log.debug("no Airflow Connection %s: using DATABASE_URL", get_settings().airflow_conn_id)
        return get_engine()
    return get_engine(url)
