"""Delivery to a real MLflow tracking server, read back with MlflowClient: one run per eval run, a checkpoint
curve per (model, suite), failed runs as FAILED, and a server outage that delays delivery and loses nothing."""

from __future__ import annotations

import datetime as dt
import statistics
import time
import uuid

import pytest
from sqlalchemy import select, update
from vlmevals.core.settings import get_settings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import ExportOutbox
from vlmevals.exports.delivery import deliver_pending
from vlmevals.runs import lifecycle as runs

from tests.vlmevals.exports.conftest import MlflowServer
from tests.vlmevals.exports.runs_data import METRIC_FILE, MODEL, SUITE_MODEL, TASK, checkpoint, completed, failed

pytestmark = pytest.mark.integration
PREFIX = "vlmevals"


@pytest.fixture()
def client(mlflow_server: MlflowServer, exporting, monkeypatch: pytest.MonkeyPatch):
    """Experiments of this test only: our run ids restart with each test's tables, the server keeps its runs."""
    from mlflow import MlflowClient

    global PREFIX
    PREFIX = f"t{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("EVALS_MLFLOW_EXPERIMENT", PREFIX + "/{task}")
    monkeypatch.setenv("EVALS_MLFLOW_CHECKPOINT_EXPERIMENT", PREFIX + "/checkpoints/{model}")
    monkeypatch.setenv("EVALS_EXPORTERS", "mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    get_settings.cache_clear()
    return MlflowClient(tracking_uri=mlflow_server.url)


def _by_run_id(client, run_id: int) -> list:
    exp = client.get_experiment_by_name(f"{PREFIX}/{TASK}")
    assert exp is not None
    return client.search_runs([exp.experiment_id], filter_string=f"tags.`vlmevals.run_id` = '{run_id}'")


def _outbox(engine, run_id: int) -> ExportOutbox:
    with session_scope(engine) as s:
        row = s.scalar(select(ExportOutbox).where(ExportOutbox.run_id == run_id))
        assert row is not None
        s.expunge(row)
        return row


def test_completed_run_lands_with_metrics_tags_params_and_artifacts(seeded, client) -> None:
    run_id = completed(seeded, score=0.6)
    assert deliver_pending(seeded).delivered == 1
    [found] = _by_run_id(client, run_id)
    assert _outbox(seeded, run_id).tracker_ref == found.info.run_id
    assert found.info.status == "FINISHED"
    m = found.data.metrics
    assert m["primary_metric"] == 0.6 and m["samples_total"] == 10 and m["samples_failed"] == 1
    assert m["ci_low"] == pytest.approx(0.4) and m["ci_high"] == pytest.approx(0.8)
    assert "regression" not in m  # no verdict (not checked): not a "no regression"
    assert m["category/split_dev_circle"] == 0.5 and m["category/split_dev_square"] == 0.7
    tags = found.data.tags
    assert (tags["task"], tags["model"], tags["vlmevals.status"]) == (TASK, MODEL, "completed")
    assert tags["vlmevals.link"].endswith(f"/api/evals/ui/leaderboard?task={TASK}&run={run_id}")
    assert found.data.params["task"] == TASK
    assert {a.path for a in client.list_artifacts(found.info.run_id)} == {METRIC_FILE, "vlmevals_result.json"}


def test_a_recreated_database_reusing_run_ids_gets_new_tracker_runs(seeded, client) -> None:
    from sqlalchemy import text

    first = completed(seeded, score=0.25)
    assert deliver_pending(seeded).delivered == 1
    with seeded.begin() as conn:  # what a recreated database does to our ids
        conn.execute(text("TRUNCATE eval_runs RESTART IDENTITY CASCADE"))
    again = completed(seeded, score=0.75)
    assert again == first and deliver_pending(seeded).delivered == 1
    found = _by_run_id(client, first)
    assert sorted(r.data.metrics["primary_metric"] for r in found) == [0.25, 0.75]


def test_failed_run_lands_as_failed_with_its_error(seeded, client) -> None:
    run_id = failed(seeded, "VLMEvalKit reported a failure: CUDA out of memory")
    assert deliver_pending(seeded).delivered == 1
    [found] = _by_run_id(client, run_id)
    assert found.info.status == "FAILED"
    assert found.data.tags["error"] == "VLMEvalKit reported a failure: CUDA out of memory"
    assert "primary_metric" not in found.data.metrics


def test_checkpoints_make_one_curve_with_their_steps(seeded, client) -> None:
    for step, score in ((100, 0.3), (200, 0.5), (300, 0.7)):
        completed(seeded, score=score, checkpoint_id=checkpoint(seeded, step))
    assert deliver_pending(seeded).delivered == 3
    exp = client.get_experiment_by_name(f"{PREFIX}/checkpoints/{MODEL}")
    [series] = client.search_runs([exp.experiment_id], filter_string=f"tags.`vlmevals.series` = '{MODEL}@-'")
    history = client.get_metric_history(series.info.run_id, f"eval/{TASK}")
    assert sorted((h.step, h.value) for h in history) == [(100, 0.3), (200, 0.5), (300, 0.7)]
    ci = client.get_metric_history(series.info.run_id, f"eval/{TASK}/ci_high")
    assert sorted(h.step for h in ci) == [100, 200, 300]
    # delivered again (re-queued by hand): the curve keeps one point per step
    with session_scope(seeded) as s:
        s.execute(update(ExportOutbox).values(state="pending", next_attempt_at=dt.datetime.now(dt.UTC)))
    assert deliver_pending(seeded).delivered == 3
    assert len(client.get_metric_history(series.info.run_id, f"eval/{TASK}")) == 3


def test_checkpoints_with_a_training_run_land_beside_its_loss(seeded, client) -> None:
    exp = client.create_experiment(f"{PREFIX}/training")
    training = client.create_run(exp, run_name="pretrain-7b").info.run_id
    for step in (100, 200, 300):
        client.log_metric(training, "loss", 3.0 - step / 100, step=step)
        completed(seeded, score=step / 1000, checkpoint_id=checkpoint(seeded, step, mlflow_run_id=training))
    ghost = completed(seeded, checkpoint_id=checkpoint(seeded, 400, mlflow_run_id="0" * 32))
    report = deliver_pending(seeded)
    assert (report.delivered, report.retrying) == (3, 1)
    assert "mlflow_run_id 00000000000000000000000000000000 is not a run" in (_outbox(seeded, ghost).last_error or "")
    history = client.get_metric_history(training, f"eval/{TASK}")
    assert sorted((h.step, h.value) for h in history) == [(100, 0.1), (200, 0.2), (300, 0.3)]
    run = client.get_run(training)
    assert run.info.status == "RUNNING"  # the training job owns its run's status
    assert len(client.get_metric_history(training, "loss")) == 3
    assert {f"vlmevals.eval_run.{i}" for i in (1, 2, 3)} <= set(run.data.tags)


def test_a_late_verdict_updates_the_same_run_and_curve(seeded, client) -> None:
    own = completed(seeded, score=0.4)
    on_curve = completed(seeded, score=0.3, checkpoint_id=checkpoint(seeded, 100))
    assert deliver_pending(seeded).delivered == 2
    with session_scope(seeded) as s:
        for run_id in (own, on_curve):
            runs.record_regression(s, run_id, regression=True, detail={"method": "test"}, baseline_run_id=run_id)
    assert (_outbox(seeded, own).state, _outbox(seeded, on_curve).state) == ("pending", "pending")
    assert deliver_pending(seeded).delivered == 2
    [found] = _by_run_id(client, own)  # the same tracker run, updated
    assert found.data.metrics["regression"] == 1.0
    assert found.data.tags["vlmevals.delivered"].endswith(" completed regression")
    assert len(client.get_metric_history(found.info.run_id, "primary_metric")) == 1  # not logged twice
    exp = client.get_experiment_by_name(f"{PREFIX}/checkpoints/{MODEL}")
    [series] = client.search_runs([exp.experiment_id], filter_string=f"tags.`vlmevals.series` = '{MODEL}@-'")
    assert [(h.step, h.value) for h in client.get_metric_history(series.info.run_id, f"eval/{TASK}")] == [(100, 0.3)]
    assert series.data.metrics[f"eval/{TASK}/regression"] == 1.0
    with session_scope(seeded) as s:  # the same verdict stored again: nothing re-sent
        runs.record_regression(s, own, regression=True, detail={"method": "test"}, baseline_run_id=own)
    assert _outbox(seeded, own).state == "delivered"


def test_the_suite_average_joins_the_curve_once_every_task_has_a_score(seeded, client) -> None:
    scores = {"demo-shapes-mcq": 0.5, "demo-colors-vqa": 40.0, "demo-shapes-yorn": 70.0}  # scales 1, 100, 100
    for step in (100, 200):
        cp = checkpoint(seeded, step, model_name=SUITE_MODEL)
        tasks = scores if step == 100 else dict(list(scores.items())[:2])  # step 200: one task still missing
        for task, score in tasks.items():
            completed(seeded, score=score, checkpoint_id=cp, task=task, model=SUITE_MODEL)
    assert deliver_pending(seeded).delivered == 5
    exp = client.get_experiment_by_name(f"{PREFIX}/checkpoints/{SUITE_MODEL}")
    [series] = client.search_runs([exp.experiment_id], filter_string=f"tags.`vlmevals.series` = '{SUITE_MODEL}@demo'")
    average = client.get_metric_history(series.info.run_id, "eval/average")
    assert [(h.step, round(h.value, 6)) for h in average] == [(100, round((50.0 + 40.0 + 70.0) / 3, 6))]
    with session_scope(seeded) as s:  # every row sent again: the same point, not a second one
        s.execute(update(ExportOutbox).values(state="pending", next_attempt_at=dt.datetime.now(dt.UTC)))
    client.delete_tag(series.info.run_id, "vlmevals.eval_run.1")  # as if that delivery had crashed before its mark
    assert deliver_pending(seeded).delivered == 5
    assert len(client.get_metric_history(series.info.run_id, "eval/average")) == 1


def test_server_down_delays_delivery_and_restart_delivers_exactly_once(
    seeded, client, mlflow_server, monkeypatch
) -> None:
    monkeypatch.setenv("EVALS_EXPORT_BACKOFF_S", "600")  # longer than the restart
    get_settings.cache_clear()
    mlflow_server.stop()
    t0 = time.perf_counter()
    run_id = completed(seeded, score=0.55)
    completing_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    report = deliver_pending(seeded)
    attempt_s = time.perf_counter() - t1
    row = _outbox(seeded, run_id)
    with session_scope(seeded) as s:
        assert runs.get_run(s, run_id).status == "completed"
    assert report.retrying == 1 and (row.state, row.attempts) == ("pending", 1)
    assert row.last_error and "Connection" in row.last_error
    print(f"\nserver down: completion {completing_s:.3f} s, failed attempt {attempt_s:.3f} s, {row.last_error[:120]}")
    mlflow_server.start()
    assert deliver_pending(seeded).delivered == 0  # not due yet: backoff
    assert deliver_pending(seeded, now=row.next_attempt_at).delivered == 1
    after = _outbox(seeded, run_id)
    assert (after.state, after.attempts) == ("delivered", 2)  # the failed try and the one that delivered
    print(f"outbox after restart: {after.state}, {after.attempts} attempts, tracker run {after.tracker_ref}")
    with session_scope(seeded) as s:  # re-queued by hand: found by its tag, not duplicated
        s.execute(update(ExportOutbox).values(state="pending", next_attempt_at=dt.datetime.now(dt.UTC)))
    assert deliver_pending(seeded).delivered == 1
    [found] = _by_run_id(client, run_id)
    assert found.data.metrics["primary_metric"] == 0.55
    assert len(client.get_metric_history(found.info.run_id, "primary_metric")) == 1


def test_delivery_latency_from_completion(seeded, client) -> None:
    """Completion to the tracker, the delivery step alone (the DAG's schedule adds up to a minute)."""
    latencies = []
    for i in range(8):
        run_id = completed(seeded, score=0.1 * i)
        with session_scope(seeded) as s:
            finished = runs.get_run(s, run_id).finished_at
        assert deliver_pending(seeded).delivered == 1
        delivered = _outbox(seeded, run_id).delivered_at
        assert finished is not None and delivered is not None
        latencies.append((delivered - finished).total_seconds())
    p50, p95 = statistics.median(latencies), statistics.quantiles(latencies, n=20, method="inclusive")[18]
    print(f"\nMLflow delivery latency over {len(latencies)} runs: p50 {p50:.3f} s, p95 {p95:.3f} s")
    assert p95 < 30
