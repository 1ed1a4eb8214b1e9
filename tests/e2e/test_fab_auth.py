"""Production auth: the stack on FAB's auth manager (EVALS_AUTH_MANAGER=fab, users and roles in Airflow's metadata
DB). A Viewer reads the evals API and its pages and is refused every write; a User and an Op trigger; no
credentials is 401. Tokens come from FAB's own `POST /auth/token`, the page's cookie from FAB's login form.

One stack of its own (metadata DB `airflow_fab_*`): api-server and dag-processor only, since no run has to
execute (without a scheduler a triggered run stays queued).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RUN_DIR, SUFFIX, _db_url, _free_port, create_database
from tests.e2e.plugin_helpers import client, wait_dag

pytestmark = pytest.mark.e2e
FAB_AIRFLOW_DB = f"airflow_fab_{SUFFIX}"
TASK, MODEL = "demo-shapes-mcq", "demo-tiny-idefics3"  # from the seeded catalogue


@pytest.fixture(scope="module")
def fab_stack(db_url: str) -> Iterator[object]:
    from vlmevals.devtools.stack import Stack, StackSettings

    create_database(FAB_AIRFLOW_DB)
    home = RUN_DIR / "fab-stack"
    home.mkdir(exist_ok=True)
    stack = Stack(
        StackSettings.model_validate(
            {
                "EVALS_HOME": str(home),
                "EVALS_AIRFLOW_PORT": _free_port(),
                "DATABASE_URL": db_url,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _db_url(FAB_AIRFLOW_DB, "postgresql+psycopg2"),
                "EVALS_AUTH_MANAGER": "fab",
            }
        )
    )
    stack.migrate()  # Airflow's and FAB's tables, FAB's users; ours are at head already
    stack.start_components(("api-server", "dag-processor"))
    try:
        stack.wait_healthy()
        yield stack
    finally:
        stack.stop(database=False)


def _fab_login_cookie(stack, username: str) -> str:
    """Sign in through FAB's login form (CSRF token included), as a browser does; the `_token` cookie it sets."""
    with httpx.Client(base_url=stack.api_url, timeout=60, follow_redirects=True) as browser:
        form = browser.get("/auth/login/")
        assert form.status_code == 200, form.text[-500:]
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form.text)
        assert csrf, "no csrf_token in FAB's login form"
        browser.post("/auth/login/", data={"username": username, "password": username, "csrf_token": csrf[1]})
        token = browser.cookies.get("_token")
        assert token, f"FAB's login set no _token cookie for {username}"
        return token


def test_fab_viewer_reads_and_is_refused_writes_user_and_op_trigger(fab_stack, seeded) -> None:
    admin, viewer, user, op = (client(fab_stack, name) for name in ("admin", "viewer", "user", "op"))
    wait_dag(admin)
    assert client(fab_stack, None).get("/api/evals/tasks").status_code == 401
    bad = httpx.post(f"{fab_stack.api_url}/auth/token", json={"username": "viewer", "password": "x"}, timeout=60)
    assert bad.status_code == 401, bad.text

    run = user.post(f"/api/evals/tasks/{TASK}/runs", json={"model_name": MODEL})
    assert run.status_code == 201, run.text
    assert run.json()["triggered_by_user"] == "user"
    by_op = op.post(f"/api/evals/tasks/{TASK}/runs", json={"model_name": MODEL, "force": True})
    assert by_op.status_code == 201, by_op.text

    for path in ("/api/evals/tasks", "/api/evals/runs", f"/api/evals/tasks/{TASK}/leaderboard", "/api/evals/models"):
        assert viewer.get(path).status_code == 200, path
    assert viewer.get("/api/evals/me").json() == {"username": "viewer", "can_trigger": False}
    assert user.get("/api/evals/me").json() == {"username": "user", "can_trigger": True}
    cookie = {"_token": _fab_login_cookie(fab_stack, "viewer")}
    page = httpx.get(f"{fab_stack.api_url}/api/evals/ui/leaderboard", cookies=cookie, timeout=60)
    assert page.status_code == 200 and "<html" in page.text.lower()

    writes = {
        "/api/evals/tasks": {
            "name": "fab-task",
            "display_name": "FAB task",
            "vlmeval_data": "DEMO_SHAPES_MCQ",
            "vlmeval_dataset_class": "CustomMCQDataset",
            "primary_metric_suffix": "_acc.csv",
            "primary_metric_key": "Overall",
        },
        "/api/evals/models": {
            "name": "fab-model",
            "display_name": "FAB model",
            "vlmeval_model": "Qwen2-VL-2B-Instruct",
        },
        f"/api/evals/tasks/{TASK}/runs": {"model_name": MODEL, "force": True},
        f"/api/evals/runs/{run.json()['id']}/cancel": None,
    }
    for path, body in writes.items():
        r = viewer.post(path, json=body)
        assert r.status_code == 403, (path, r.status_code, r.text)
    assert viewer.get(f"/api/evals/runs/{run.json()['id']}").json()["status"] == "queued"
    assert {t["name"] for t in viewer.get("/api/evals/tasks").json()["data"]}.isdisjoint({"fab-task"})

    cancel = op.post(f"/api/evals/runs/{by_op.json()['id']}/cancel")
    assert cancel.status_code == 200 and cancel.json()["run"]["status"] == "cancelled", cancel.text
