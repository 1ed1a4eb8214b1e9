"""DAG run notes: the text for a scored, a failed and an unrecorded run, and the REST calls that set it."""

from __future__ import annotations

import json

import httpx
import pytest
from vlmevals.db.engine import session_scope
from vlmevals.pipeline import notes
from vlmevals.runs import lifecycle as runs

X = notes.TIMES
SITE = "http://airflow.example:8080"


def _new(engine, dag_run_id: str = "manual__1") -> int:
    with session_scope(engine) as s:
        run = runs.create_run(
            s, "demo-shapes-mcq", "demo-tiny-idefics3", triggered_by="form", dag_id="eval_run", dag_run_id=dag_run_id
        )
        return run.id


@pytest.mark.integration
def test_note_of_a_scored_run_names_the_pair_the_score_and_links_the_board(seeded) -> None:
    run_id = _new(seeded)
    with session_scope(seeded) as s:
        runs.mark_running(s, run_id, attempt=1)
        runs.mark_completed(s, run_id, primary_metric=0.4, metrics={"Overall": 0.4})
    text = notes.run_note(seeded, run_id, SITE)
    assert text.startswith(f"eval run {run_id}: demo-shapes-mcq {X} demo-tiny-idefics3 → 0.4000 (")
    assert f"({SITE}/api/evals/ui/leaderboard?task=demo-shapes-mcq&run={run_id})" in text
    assert notes.run_of_dag_run(seeded, "manual__1") == run_id


@pytest.mark.integration
def test_note_of_a_failed_run_carries_the_error_and_fits_airflows_column(seeded) -> None:
    run_id = _new(seeded)
    with session_scope(seeded) as s:
        runs.mark_failed(s, run_id, "queue: dataset missing " + "x" * 3000)
    text = notes.run_note(seeded, run_id, SITE)
    assert f"eval run {run_id}: demo-shapes-mcq {X} demo-tiny-idefics3 → failed: queue: dataset missing" in text
    assert len(text) <= notes.NOTE_MAX_CHARS and text.endswith(f"&run={run_id})"), "the link survives truncation"


def test_unrecorded_note_names_the_request_and_the_error() -> None:
    text = notes.unrecorded_note("demo-shapes-mcq", "no-such-model", "no model named 'no-such-model'")
    assert text == f"eval run not recorded: demo-shapes-mcq {X} no-such-model → failed: no model named 'no-such-model'"


def test_write_note_signs_in_and_patches_only_the_note() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/auth/token":
            return httpx.Response(201, json={"access_token": "jwt"})
        return httpx.Response(200, json={"note": json.loads(request.content)["note"]})

    login = notes.ApiLogin("http://127.0.0.1:1", "op", "op")
    client = httpx.Client(base_url=login.base_url, transport=httpx.MockTransport(handler))
    notes.write_note(login, "eval_run", "manual__2026-12-02T06:52:34+00:00", f"eval run 1: a {X} b → 0.5", client)
    token, patch = seen
    assert json.loads(token.content) == {"username": "op", "password": "op"}
    assert patch.method == "PATCH"
    assert (
        patch.url.raw_path
        == b"/api/v2/dags/eval_run/dagRuns/manual__2026-12-02T06%3A52%3A34%2B00%3A00?update_mask=note"
    )
    assert patch.headers["Authorization"] == "Bearer jwt"
    assert json.loads(patch.content) == {"note": f"eval run 1: a {X} b → 0.5"}


def test_a_refused_note_is_logged_not_raised(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def refuse(*args: object, **kw: object) -> None:
        raise httpx.HTTPStatusError(
            "403 Forbidden", request=httpx.Request("PATCH", "http://x"), response=httpx.Response(403)
        )

    monkeypatch.setattr(notes, "write_note", refuse)
    assert notes.try_write_note("eval_run", "r1", "text", notes.ApiLogin("http://x", "viewer", "viewer")) is False
    assert "could not write the DAG run note of eval_run/r1" in caplog.text
