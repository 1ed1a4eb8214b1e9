"""Every trigger path at once, on the live stack: the plugin (POST /api/evals/tasks/{t}/runs), Airflow's REST API
(POST /api/v2/dags/eval_run/dagRuns, through `queue`) and a `nightly_evals` DAG run, for the same pairs at the same
time. The database's one-active-run index decides: one active run per pair, every other caller is told its id,
and every eval_run DAG run has its row."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from vlmevals.catalogue.enrolments import enrol
from vlmevals.core.settings import get_settings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun, Model, Task
from vlmevals.devtools.stack import wait_for_dag

from tests.doubles.openai_server import serve
from tests.e2e.plugin_helpers import client

pytestmark = pytest.mark.e2e
MCQ = "demo-shapes-mcq"
MODELS = ("served-paths-a", "served-paths-b")
PER_PATH = 3  # plugin and REST calls per pair


def _fire(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    barrier = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)

    def go(i: int) -> None:
        barrier.wait()
        out[i] = calls[i]()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def _wait(what: str, check: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def _rows(engine) -> dict[str, list[EvalRun]]:
    with session_scope(engine) as s:
        rows = s.execute(select(EvalRun, Model.name).join(Model).order_by(EvalRun.id)).all()
        s.expunge_all()
    out: dict[str, list[EvalRun]] = {m: [] for m in MODELS}
    for run, model in rows:
        out[model].append(run)
    return out


def _setup(engine, base_url: str) -> None:
    with session_scope(engine) as s:
        for name in MODELS:
            s.add(Model(name=name, display_name=name, vlmeval_model=name, gpus=0, endpoint_base_url=base_url))
        s.flush()
        for name in MODELS:
            enrol(s, MCQ, name, user="test")
        assert s.scalar(select(Task.id).where(Task.name == MCQ)) is not None


def test_plugin_rest_and_nightly_at_once_one_active_run_per_pair(live_stack, seeded) -> None:
    admin = client(live_stack, "admin")
    wait_for_dag(admin, "eval_run", timeout_s=120)
    wait_for_dag(admin, "nightly_evals", timeout_s=120)
    _no_nightly_running(admin)
    tsv = get_settings().lmu_data / "DEMO_SHAPES_MCQ.tsv"
    with serve(mode="oracle", tsv=str(tsv), delay_s=0.5) as srv:  # slow answers: the winners stay active a while
        _setup(seeded, srv.base_url)
        t0 = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        started = time.perf_counter()
        calls: list[Callable[[], httpx.Response]] = []
        for m in MODELS:
            calls += [lambda m=m: admin.post(f"/api/evals/tasks/{MCQ}/runs", json={"model_name": m})] * PER_PATH
            rest = {"logical_date": None, "conf": {"task": MCQ, "model": m, "triggered_by": "airflow_rest"}}
            calls += [lambda rest=rest: admin.post("/api/v2/dags/eval_run/dagRuns", json=rest)] * PER_PATH
        calls.append(lambda: admin.post("/api/v2/dags/nightly_evals/dagRuns", json={"logical_date": None}))
        got = _fire(calls)
        fired_s = time.perf_counter() - started
        assert all(r.status_code in (200, 201, 409) for r in got), [(r.status_code, r.text[:200]) for r in got]
        nightly_id = got[-1].json()["dag_run_id"]
        rest_ids = [r.json()["dag_run_id"] for r in got[:-1] if r.url.path.endswith("/dagRuns")]
        assert len(rest_ids) == PER_PATH * len(MODELS)
        for dr in rest_ids:  # refused ones fail at queue; the winner (if REST won) runs on
            _wait(f"queue of {dr}", lambda dr=dr: _queue_over(admin, dr), 240)
        night = _nightly_summary(admin, nightly_id)
        by_pair = _rows(seeded)
        win = {m: [r.id for r in rs if not _refused(r)] for m, rs in by_pair.items()}
        # one run per pair, unless the first ended before a later path looked (never two active at once)
        assert all(ids for ids in win.values()), [(r.id, r.status, r.error) for rs in by_pair.values() for r in rs]
        _assert_never_two_active(by_pair)
        _assert_told(got, night, by_pair, win)
        _assert_every_dag_run_has_its_row(admin, seeded, t0)
        for ids in win.values():  # no need to evaluate to the end
            for run_id in ids:
                admin.post(f"/api/evals/runs/{run_id}/cancel")
    refused = sum(r.status_code == 409 for r in got) + sum(_refused(r) for rs in by_pair.values() for r in rs)
    assert refused >= len(MODELS) * (PER_PATH - 1), "the plugin calls fired at once must have collided"
    skipped = sum(d["reason"] == "active" for d in night["decisions"] if d["model"] in MODELS)
    runs = sum(map(len, win.values()))
    print(
        f"\ntrigger paths: {len(calls)} triggers ({PER_PATH} plugin + {PER_PATH} REST per pair x {len(MODELS)} pairs "
        f"+ 1 nightly over them) fired in {fired_s:.2f} s: {runs} runs, {refused} duplicates refused "
        f"(plugin 409 / queue failed), {skipped} nightly skips as active; {time.perf_counter() - started:.1f} s in all"
    )


def _refused(run: EvalRun) -> bool:
    return run.status == "failed" and "is already" in (run.error or "") and "force" in (run.error or "")


def _no_nightly_running(c: httpx.Client) -> None:
    """The scheduler takes the latest cron slot once when the DAG appears: let that night pass first."""
    _wait(
        "the first scheduled slot to be taken",
        lambda: (
            (nxt := c.get("/api/v2/dags/nightly_evals").json().get("next_dagrun_run_after"))
            and dt.datetime.fromisoformat(nxt) > dt.datetime.now(dt.UTC)
        ),
        60,
    )
    _wait(
        "earlier nightly runs to finish",
        lambda: all(
            r["state"] in ("success", "failed") for r in c.get("/api/v2/dags/nightly_evals/dagRuns").json()["dag_runs"]
        ),
        120,
    )


def _queue_over(c: httpx.Client, dag_run_id: str) -> bool:
    r = c.get(f"/api/v2/dags/eval_run/dagRuns/{dag_run_id}/taskInstances/queue")
    return r.status_code == 200 and r.json()["state"] in ("success", "failed")


def _nightly_summary(c: httpx.Client, dag_run_id: str) -> dict[str, Any]:
    state = _wait("the nightly run", lambda: _over(c, "nightly_evals", dag_run_id), 240)
    assert state == "success"
    x = c.get(f"/api/v2/dags/nightly_evals/dagRuns/{dag_run_id}/taskInstances/summary/xcomEntries/return_value")
    assert x.status_code == 200, x.text
    return x.json()["value"]


def _over(c: httpx.Client, dag_id: str, dag_run_id: str) -> str | None:
    state = c.get(f"/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}").json()["state"]
    return state if state in ("success", "failed") else None


def _assert_never_two_active(by_pair: dict[str, list[EvalRun]]) -> None:
    now = dt.datetime.now(dt.UTC)
    for rows in by_pair.values():
        spans = sorted((r.created_at, r.finished_at or now) for r in rows if not _refused(r))
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, f"two active runs of one pair overlap: {spans}"


def _assert_told(
    got: list[httpx.Response], night: dict[str, Any], by_pair: dict[str, list[EvalRun]], win: dict[str, list[int]]
) -> None:
    """Every caller that did not win was told the winner's id: plugin 409, REST row and queue error, nightly."""
    every = {i for ids in win.values() for i in ids}
    for r in got:
        if r.status_code == 409:
            assert r.json()["existing_run_id"] in every, r.json()
    for m, rows in by_pair.items():
        for run in rows:
            if _refused(run):
                assert any(f"eval run {i} " in (run.error or "") for i in win[m]), (run.id, run.error)
    for d in night["decisions"]:
        if d["model"] in MODELS and d["action"] == "skip":
            assert d["reason"] == "active" and d["last_run_id"] in win[d["model"]], d


def _assert_every_dag_run_has_its_row(c: httpx.Client, engine, since: dt.datetime) -> None:
    listed = c.get("/api/v2/dags/eval_run/dagRuns", params={"limit": 100, "order_by": "-run_after"}).json()
    ours = [d["dag_run_id"] for d in listed["dag_runs"] if dt.datetime.fromisoformat(d["run_after"]) >= since]
    with session_scope(engine) as s:
        rows = set(s.scalars(select(EvalRun.dag_run_id).where(EvalRun.dag_run_id.in_(ours))))
    missing = [d for d in ours if d not in rows]
    assert ours and not missing, f"eval_run DAG runs without an eval run row: {missing}"
