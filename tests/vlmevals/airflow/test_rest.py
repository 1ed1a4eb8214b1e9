"""The one Airflow REST client: it signs in once, then sends the token with every call."""

from __future__ import annotations

import json

import httpx
import pytest
from vlmevals.airflow.rest import AirflowRest, ApiLogin

LOGIN = ApiLogin("http://127.0.0.1:1", "op", "secret")


def _airflow(seen: list[httpx.Request]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/auth/token":
            return httpx.Response(201, json={"access_token": f"jwt{len(seen)}"})
        if request.url.path == "/api/v2/eventLogs":
            return httpx.Response(200, json={"event_logs": [{"event": "patch_dag_run", "owner": "op"}]})
        return httpx.Response(200, json={})

    return httpx.Client(base_url=LOGIN.base_url, transport=httpx.MockTransport(handler))


def test_one_login_serves_the_note_and_the_audit_log() -> None:
    seen: list[httpx.Request] = []
    client = _airflow(seen)
    with AirflowRest(LOGIN, client=client) as api:
        api.set_dag_run_note("eval_run", "manual__1", "a note")
        rows = api.event_logs("eval_run", "manual__1")
    assert [r.url.path for r in seen] == ["/auth/token", "/api/v2/dags/eval_run/dagRuns/manual__1", "/api/v2/eventLogs"]
    assert json.loads(seen[0].content) == {"username": "op", "password": "secret"}
    assert {r.headers["Authorization"] for r in seen[1:]} == {"Bearer jwt1"}
    assert dict(seen[2].url.params) == {"dag_id": "eval_run", "run_id": "manual__1", "order_by": "-when", "limit": "50"}
    assert rows == [{"event": "patch_dag_run", "owner": "op"}]
    assert not client.is_closed, "a client passed in belongs to the caller"


def test_a_refused_login_raises_before_any_call() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, json={"detail": "Invalid credentials"})

    client = httpx.Client(base_url=LOGIN.base_url, transport=httpx.MockTransport(handler))
    with pytest.raises(httpx.HTTPStatusError, match="401"):
        AirflowRest(LOGIN, client=client).event_logs("eval_run", "r1")
    assert [r.url.path for r in seen] == ["/auth/token"]
