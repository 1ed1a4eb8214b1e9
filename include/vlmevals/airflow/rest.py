"""One client for Airflow's public REST API, signed in once as the user of the `evals_airflow_api` Connection.

Tasks must not touch Airflow's metadata DB, so what they need from Airflow beyond the task SDK goes through
the public API: a DAG run's note (`PATCH …/dagRuns/{id}?update_mask=note`) and the audit log of DAG-run
state changes (`GET /api/v2/eventLogs`). The Connection (`AIRFLOW_CONN_EVALS_AIRFLOW_API=http://user:password@host:port`,
set by `vlmevals up`) names the address and the user; without it callers skip what needed it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

log = logging.getLogger(__name__)

API_CONN_ID = "evals_airflow_api"


@dataclass(frozen=True)
class ApiLogin:
    base_url: str
    username: str
    password: str


def api_login(conn_id: str = API_CONN_ID) -> ApiLogin | None:
    """The REST API address and login from the Airflow connection, or None when it is not configured."""
    from airflow.sdk import Connection

    try:
        conn = Connection.get(conn_id)
    except Exception as err:  # AirflowNotFoundException, or no task context
        log.warning("no DAG run note: set the Airflow connection %s (%s)", conn_id, err)
        return None
    if not conn.host or not conn.login:
        log.warning("no DAG run note: connection %s needs a host and a login", conn_id)
        return None
    port = f":{conn.port}" if conn.port else ""
    path = f"/{conn.schema.strip('/')}" if conn.schema else ""
    scheme = "https" if conn.conn_type == "https" else "http"
    return ApiLogin(f"{scheme}://{conn.host}{port}{path}", conn.login, conn.password or "")


def site_url(login: ApiLogin) -> str:
    """Where users reach Airflow (`[api] base_url`), else the address the task reached it at."""
    from airflow.sdk.configuration import conf

    return str(conf.get("api", "base_url", fallback="") or login.base_url)


class AirflowRest:
    """Airflow's REST API as `login`: `POST /auth/token` once, then Bearer-authenticated calls (raise httpx errors).

    A client passed in (e.g. one on a mock transport) is used and left open; one made here is closed on exit.
    """

    def __init__(self, login: ApiLogin, *, timeout: float = 30, client: httpx.Client | None = None) -> None:
        self.login = login
        self._own = client is None
        self._http = client or httpx.Client(base_url=login.base_url, timeout=timeout)
        self._token: str | None = None

    def __enter__(self) -> AirflowRest:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._own:
            self._http.close()

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            r = self._http.post("/auth/token", json={"username": self.login.username, "password": self.login.password})
            r.raise_for_status()
            self._token = str(r.json()["access_token"])
        return {"Authorization": f"Bearer {self._token}"}

    def set_dag_run_note(self, dag_id: str, dag_run_id: str, text: str) -> None:
        """Set (only) the note of a DAG run."""
        r = self._http.patch(
            f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(dag_run_id, safe='')}",
            params={"update_mask": "note"},
            json={"note": text},
            headers=self._headers(),
        )
        r.raise_for_status()

    def event_logs(self, dag_id: str, dag_run_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The DAG run's audit-log rows, newest first (who changed its or its tasks' state, with the request body)."""
        r = self._http.get(
            "/api/v2/eventLogs",
            params={"dag_id": dag_id, "run_id": dag_run_id, "order_by": "-when", "limit": limit},
            headers=self._headers(),
        )
        r.raise_for_status()
        return list(r.json().get("event_logs", []))
