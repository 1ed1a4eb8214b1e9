"""Abuse of the evals API: a burst of concurrent triggers, fuzzing from its own OpenAPI document (Schemathesis),
path traversal against the artifacts routes, and every route without credentials.

The burst goes to the real api-server of the session's live stack (uvicorn, real concurrency) with `eval_run`
paused, so the DAG runs it creates are checked and deleted without running 20 evaluations. The rest runs against
Airflow's own app in-process (tests/vlmevals/api/conftest.py: real JWTs, real auth manager, real PostgreSQL).
"""

from __future__ import annotations

import itertools
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun, Model, Task

from tests.e2e.fuzz_report import PHASES, run_fuzz
from tests.vlmevals.api.conftest import (  # noqa: F401  (fixtures, imported to be used here)
    Clients,
    add_run,
    airflow_api,
    clients,
    paused_eval_run,
    tokens,
)

pytestmark = pytest.mark.e2e


def _pairs(engine, tasks: int = 4, models: int = 5) -> list[tuple[str, str]]:
    with session_scope(engine) as s:
        for t in range(tasks):
            s.add(Task(name=f"burst-t{t}", display_name=f"Burst {t}", vlmeval_data="DEMO_SHAPES_MCQ"))
        for m in range(models):
            s.add(Model(name=f"burst-m{m}", display_name=f"Burst {m}", vlmeval_model=f"BurstM{m}"))
    return [(f"burst-t{t}", f"burst-m{m}") for t in range(tasks) for m in range(models)]


def test_concurrent_triggers_make_one_run_per_pair(live_stack, seeded) -> None:
    pairs = _pairs(seeded)
    headers = {"Authorization": f"Bearer {live_stack.token('op')}"}
    admin = httpx.Client(
        base_url=live_stack.api_url, timeout=60, headers={"Authorization": f"Bearer {live_stack.token('admin')}"}
    )
    deadline = time.monotonic() + 120
    while admin.get("/api/v2/dags/eval_run").status_code != 200:  # parsed by the dag-processor
        assert time.monotonic() < deadline, "eval_run never parsed by the dag-processor"
        time.sleep(1)
    assert admin.patch("/api/v2/dags/eval_run", json={"is_paused": True}).json()["is_paused"] is True
    requests = [p for p in pairs for _ in range(5)]  # 100 requests, 5 per pair, all at once
    created_dag_runs: list[str] = []
    try:
        limits = httpx.Limits(max_connections=100)
        with (
            httpx.Client(base_url=live_stack.api_url, timeout=120, headers=headers, limits=limits) as c,
            ThreadPoolExecutor(max_workers=100) as pool,
        ):
            responses = list(
                pool.map(lambda p: (p, c.post(f"/api/evals/tasks/{p[0]}/runs", json={"model_name": p[1]})), requests)
            )
        codes = [r.status_code for _, r in responses]
        assert set(codes) <= {201, 409}, [
            (p, r.status_code, r.text[:200]) for p, r in responses if r.status_code not in (201, 409)
        ]
        created = {p: r.json() for p, r in responses if r.status_code == 201}
        assert len(created) == codes.count(201) == len(pairs), "exactly one run per pair"
        created_dag_runs = [run["dag_run_id"] for run in created.values()]
        for p, r in responses:
            if r.status_code == 409:
                assert r.json()["existing_run_id"] == created[p]["id"], "409 names the pair's run"
        with session_scope(seeded) as s:
            assert s.scalar(select(func.count()).select_from(EvalRun)) == len(pairs)
            rows = s.scalars(select(EvalRun)).all()
            assert len({(r.task_id, r.model_id) for r in rows}) == len(pairs)
            by_dag_run = {r.dag_run_id: r.id for r in rows}
        listed = admin.get("/api/v2/dags/eval_run/dagRuns", params={"limit": 1000}).json()["dag_runs"]
        ours = {d["dag_run_id"]: d for d in listed if d["dag_run_id"] in by_dag_run}
        assert set(ours) == set(by_dag_run), "every eval run has its DAG run"
        for dag_run_id, d in ours.items():
            assert d["conf"]["eval_run_id"] == by_dag_run[dag_run_id], "and each DAG run names its eval run"
        burst = [
            d
            for d in listed
            if d["dag_run_id"].startswith("evals_api__") and d["conf"].get("task", "").startswith("burst-")
        ]
        assert len(burst) == len(pairs), "no DAG run without an eval run"
    finally:
        for dag_run_id in created_dag_runs:
            admin.delete(f"/api/v2/dags/eval_run/dagRuns/{dag_run_id}")
        admin.patch("/api/v2/dags/eval_run", json={"is_paused": False})


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_fuzz_from_openapi(airflow_api, tokens, clients: Clients, seeded, role: str) -> None:  # noqa: F811
    """Every Schemathesis phase (examples, coverage, fuzzing, stateful) with every check, fixed seed, bounded time:
    the document and the behaviour agree, nothing answers 5xx; a failure prints the request that reproduces it."""
    add_run(seeded, "demo-shapes-mcq", "demo-tiny-idefics3", score=0.5)  # something for the reads to find
    report = run_fuzz(airflow_api, tokens[role], role)
    print(report.figures())
    assert sum(report.requests.values()) >= 200, report.figures()
    assert all(report.requests[p] for p in PHASES), f"a phase sent no request: {report.figures()}"
    assert report.failure_count == 0 and not report.errors, report.details()


SECRET = "TOP-SECRET-OUTSIDE-THE-RUN"
TRAVERSALS = [
    "../secret.txt",
    "..%2Fsecret.txt",
    "%2e%2e/secret.txt",
    "%2e%2e%2fsecret.txt",
    "..%252Fsecret.txt",
    "sub/../../secret.txt",
    "./../secret.txt",
    "....//secret.txt",
    "..\\secret.txt",
    "..%5Csecret.txt",
    "/etc/passwd",
    "%2Fetc%2Fpasswd",
    "//etc/passwd",
    "escape",
    "escape_dir/secret.txt",
    "secret.txt%00.log",
    "%00",
    "%2e%2e",
    "%2e",
    "ok.log/../../secret.txt",
    "\u2025/secret.txt",
    "..;/secret.txt",
]


def test_path_traversal_reaches_nothing_outside(clients: Clients, seeded, tmp_path: Path) -> None:  # noqa: F811
    run_id = add_run(seeded, "demo-shapes-mcq", "demo-tiny-idefics3", score=0.5)
    root = tmp_path / "runs" / str(run_id)
    (root / "sub").mkdir(parents=True)
    (root / "ok.log").write_text("inside")
    (tmp_path / "runs" / "secret.txt").write_text(SECRET)
    (root / "escape").symlink_to(tmp_path / "runs" / "secret.txt")
    (root / "escape_dir").symlink_to(tmp_path / "runs", target_is_directory=True)
    with session_scope(seeded) as s:
        s.get(EvalRun, run_id).artifacts_dir = str(root)
    base = f"/api/evals/runs/{run_id}/artifacts"
    assert clients.viewer.get(f"{base}/ok.log").text == "inside"
    listing = clients.viewer.get(base).json()
    assert {f["name"] for f in listing["data"]} == {"ok.log"}, "links leading outside are not listed"
    for payload, c in itertools.product(TRAVERSALS, [clients.viewer, clients.admin]):
        r = c.get(f"{base}/{payload}")
        assert r.status_code in (400, 404, 422), (payload, r.status_code, r.text[:200])
        assert SECRET not in r.text and "root:" not in r.text, payload
        assert "detail" in r.json(), payload  # a readable error, not an empty body


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: "1" if "id" in m.group(0) else "demo-shapes-mcq", path)


def test_every_route_needs_credentials(clients: Clients, seeded) -> None:  # noqa: F811
    from fastapi.routing import APIRoute
    from starlette.routing import Mount
    from vlmevals.api.app import create_app

    add_run(seeded, "demo-shapes-mcq", "demo-tiny-idefics3", score=0.5)
    doc = clients.viewer.get("/api/evals/openapi.json").json()
    targets = {(m.upper(), _concrete(p)) for p, item in doc["paths"].items() for m in item if m != "parameters"}
    for route in create_app().routes:  # also the routes kept out of the schema (page, docs, static files)
        if isinstance(route, APIRoute):
            targets |= {(m, _concrete(route.path)) for m in route.methods if m != "HEAD"}
        elif isinstance(route, Mount):
            targets.add(("GET", f"{route.path}/leaderboard.js"))
    assert len(targets) >= 20
    for method, path in sorted(targets):
        r = clients.anon.request(method, f"/api/evals{path}", json={} if method in ("POST", "PUT", "PATCH") else None)
        assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
        forged = clients.anon.request(method, f"/api/evals{path}", headers={"Authorization": "Bearer x.y.z"})
        assert forged.status_code in (401, 403), (method, path, forged.status_code)
