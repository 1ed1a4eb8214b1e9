"""The nightly DAG on a running Airflow (scheduler, LocalExecutor): three nights over two enrolled pairs, the
demo model and a served model whose answers the OpenAI-compatible test server controls.

Night 1 triggers both (never evaluated); night 2 skips both (fingerprints unchanged); before night 3 the server
starts answering wrongly and the night is forced: both re-run, the served model's drop is flagged as a
regression against night 1, visible in the evals API.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from vlmevals.catalogue.enrolments import enrol
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun, Model

from tests.doubles.openai_server import serve

pytestmark = pytest.mark.e2e
MCQ, DEMO, SERVED = "demo-shapes-mcq", "demo-tiny-idefics3", "served-e2e"


def _wait(what: str, check, timeout_s: float = 240, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def _night(client: httpx.Client, force: bool = False) -> dict[str, Any]:
    r = client.post("/api/v2/dags/nightly_evals/dagRuns", json={"logical_date": None, "conf": {"force": force}})
    assert r.status_code == 200, r.text
    run_id = r.json()["dag_run_id"]

    def done() -> str | None:
        state = client.get(f"/api/v2/dags/nightly_evals/dagRuns/{run_id}").json()["state"]
        return state if state in ("success", "failed") else None

    assert _wait(f"nightly run {run_id}", done, 180) == "success"
    x = client.get(f"/api/v2/dags/nightly_evals/dagRuns/{run_id}/taskInstances/summary/xcomEntries/return_value")
    assert x.status_code == 200, x.text
    return x.json()["value"]


def _runs(engine) -> list[EvalRun]:
    with session_scope(engine) as s:
        rows = list(s.scalars(select(EvalRun).order_by(EvalRun.id)))
        for r in rows:
            _ = r.model
        return rows


def _all_final(engine, n: int) -> list[EvalRun] | None:
    rows = _runs(engine)
    return rows if len(rows) == n and all(r.status not in ("queued", "running") for r in rows) else None


def test_nightly_triggers_skips_forces_and_flags_regressions(live_stack, seeded) -> None:
    from vlmevals.core.settings import get_settings

    client = httpx.Client(
        base_url=live_stack.api_url, timeout=30, headers={"Authorization": f"Bearer {live_stack.token('admin')}"}
    )
    dag = _wait(
        "nightly_evals parsed",
        lambda: (r := client.get("/api/v2/dags/nightly_evals")).status_code == 200 and r.json(),
        120,
    )
    if dag.get("is_paused"):
        client.patch("/api/v2/dags/nightly_evals", json={"is_paused": False})
    # the scheduler runs the latest 02:00 slot once when the DAG first appears: let that (empty) night pass first
    _wait(
        "the first scheduled slot to be taken",
        lambda: (
            (nxt := client.get("/api/v2/dags/nightly_evals").json().get("next_dagrun_run_after"))
            and dt.datetime.fromisoformat(nxt) > dt.datetime.now(dt.UTC)
        ),
        60,
    )
    _wait(
        "earlier nightly runs to finish",
        lambda: all(
            r["state"] in ("success", "failed")
            for r in client.get("/api/v2/dags/nightly_evals/dagRuns").json()["dag_runs"]
        ),
        120,
    )

    tsv = get_settings().lmu_data / "DEMO_SHAPES_MCQ.tsv"
    with serve(mode="oracle", tsv=str(tsv)) as srv:
        with session_scope(seeded) as s:
            s.add(
                Model(
                    name=SERVED,
                    display_name="Served (test server)",
                    vlmeval_model="served",
                    gpus=0,
                    endpoint_base_url=srv.base_url,
                )
            )
            s.flush()
            enrol(s, MCQ, DEMO, user="test")
            enrol(s, MCQ, SERVED, user="test")

        night1 = _night(client)
        assert (night1["triggered"], night1["skipped"], night1["triggered_by_reason"]) == (2, 0, {"new": 2})
        first = {r.model.name: r for r in _wait("night 1's evaluations", lambda: _all_final(seeded, 2), 300)}
        assert all(r.status == "completed" and r.triggered_by == "nightly" for r in first.values()), [
            (r.model.name, r.status, r.error) for r in first.values()
        ]
        assert first[SERVED].primary_metric > 0.5, "oracle answers"
        assert all(r.fingerprint_hash for r in first.values())

        night2 = _night(client)
        assert (night2["triggered"], night2["skipped"], night2["skipped_by_reason"]) == (0, 2, {"unchanged": 2})
        assert {d["detail"] for d in night2["decisions"]} == {
            f"unchanged since run {r.id} (fingerprint {r.fingerprint_hash[:12]})" for r in first.values()
        }
        assert len(_runs(seeded)) == 2

        srv.set_policy(mode="wrong")
        night3 = _night(client, force=True)
        assert (night3["triggered"], night3["triggered_by_reason"]) == (2, {"forced": 2})
        rows = _wait("night 3's evaluations", lambda: _all_final(seeded, 4), 300)
    third = {r.model.name: r for r in rows[2:]}
    assert all(r.status == "completed" for r in third.values()), [(r.status, r.error) for r in third.values()]
    bad = third[SERVED]
    assert bad.primary_metric < first[SERVED].primary_metric
    assert bad.regression and bad.baseline_run_id == first[SERVED].id
    assert bad.regression_detail["delta"] == pytest.approx(bad.primary_metric - first[SERVED].primary_metric)
    assert third[DEMO].regression is False, "same weights, same answers"
    api = client.get(f"/api/evals/runs/{bad.id}")
    assert api.status_code == 200, api.text
    assert api.json()["regression"] is True and api.json()["baseline_run_id"] == first[SERVED].id
