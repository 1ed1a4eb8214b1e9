"""The `queue` step records the path a DAG run came by: the conf's `triggered_by`, the form when it names none,
and the values a conf used before migration 0009 (scripts still send them) under their new names."""

from __future__ import annotations

import pytest
from vlmevals.core.errors import InvalidRequestError
from vlmevals.db.engine import session_scope
from vlmevals.pipeline import queue as queue_module
from vlmevals.pipeline.queue import queue_step
from vlmevals.runs import lifecycle as runs

pytestmark = pytest.mark.integration
MCQ, DEMO = "demo-shapes-mcq", "demo-tiny-idefics3"


@pytest.mark.parametrize(
    ("given", "stored"),
    [(None, "form"), ("airflow_rest", "airflow_rest"), ("rest", "airflow_rest"), ("ui", "form"), ("api", "api")],
)
def test_conf_names_the_path(seeded, monkeypatch, given: str | None, stored: str) -> None:
    monkeypatch.setattr(queue_module, "_check", lambda settings, run_id, engine: (1, "test", 10))  # no VLMEvalKit
    conf = {"task": MCQ, "model": DEMO} | ({"triggered_by": given} if given else {})
    got = queue_step(seeded, conf, dag_id="eval_run", dag_run_id="manual__1", run_type="manual", user=None)
    with session_scope(seeded) as s:
        assert runs.get_run(s, got["eval_run_id"]).triggered_by == stored


def test_an_unknown_path_is_refused_naming_the_known_ones(seeded) -> None:
    conf = {"task": MCQ, "model": DEMO, "triggered_by": "pigeon"}
    with pytest.raises(InvalidRequestError, match="airflow_rest, form, nightly"):
        queue_step(seeded, conf, dag_id="eval_run", dag_run_id="manual__2", run_type="manual", user=None)
