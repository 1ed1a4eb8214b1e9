from __future__ import annotations

import threading

import pytest
from vlmevals.core.errors import VLMEvalFailure
from vlmevals.core.settings import Settings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun, Model
from vlmevals.results import fingerprint
from vlmevals.runs import concurrency
from vlmevals.runs import lifecycle as runs

pytestmark = pytest.mark.integration

URL = "http://127.0.0.1:9/v1"


def _served_run(engine, name: str, nproc: int | None, url: str = URL) -> int:
    with session_scope(engine) as s:
        s.add(Model(name=name, display_name=name, vlmeval_model=name, endpoint_base_url=url, api_nproc=nproc))
        s.flush()
        run = runs.create_run(s, "demo-shapes-mcq", name, triggered_by="airflow_rest")
        run_id = run.id
    with session_scope(engine) as s:
        assert runs.mark_running(s, run_id, attempt=1)
    return run_id


def _settings(wait_s: float = 0) -> Settings:
    return Settings(EVALS_ENDPOINT_MAX_CONCURRENCY=16, EVALS_ENDPOINT_WAIT_S=wait_s, EVALS_ENDPOINT_POLL_S=0.05)


def test_second_run_on_one_endpoint_gets_what_is_left(seeded) -> None:
    a, b = _served_run(seeded, "served-a", 12), _served_run(seeded, "served-b", 12)
    assert concurrency.claim(seeded, a, URL, 12, _settings())["api_nproc"] == 12
    part = concurrency.claim(seeded, b, URL, 12, _settings())
    assert part == {"api_nproc": 4, "requested": 12, "endpoint_cap": 16, "held_by_others": 12, "endpoint": URL}
    with session_scope(seeded) as s:
        assert s.get_one(EvalRun, b).fingerprint["concurrency"]["api_nproc"] == 4
    # a third run finds the endpoint full and, with no wait allowed, fails retryably naming the setting
    c = _served_run(seeded, "served-c", 2)
    with pytest.raises(VLMEvalFailure, match="EVALS_ENDPOINT_MAX_CONCURRENCY=16"):
        concurrency.claim(seeded, c, URL, 2, _settings())
    # another endpoint is not affected; a finished run releases its share
    d = _served_run(seeded, "served-d", 12, url="http://127.0.0.1:10/v1")
    assert concurrency.claim(seeded, d, "http://127.0.0.1:10/v1", 12, _settings())["api_nproc"] == 12
    with session_scope(seeded) as s:
        assert runs.mark_completed(s, a, primary_metric=0.5, metrics={})
    assert concurrency.claim(seeded, c, URL, 2, _settings())["api_nproc"] == 2


def test_a_waiting_run_starts_when_a_share_is_released(seeded) -> None:
    a, b = _served_run(seeded, "served-a", 16), _served_run(seeded, "served-b", 8)
    assert concurrency.claim(seeded, a, URL, 16, _settings())["api_nproc"] == 16
    got: dict = {}
    waiter = threading.Thread(target=lambda: got.update(concurrency.claim(seeded, b, URL, 8, _settings(wait_s=60))))
    waiter.start()
    waiter.join(timeout=0.3)
    assert waiter.is_alive() and not got  # nothing free: it waits
    with session_scope(seeded) as s:
        assert runs.mark_failed(s, a, "gone")
    waiter.join(timeout=60)
    assert got["api_nproc"] == 8


def test_concurrent_claims_never_exceed_the_cap(seeded) -> None:
    ids = [_served_run(seeded, f"served-{i}", 6) for i in range(6)]
    granted: list[int] = []

    def one(run_id: int) -> None:
        try:
            granted.append(concurrency.claim(seeded, run_id, URL, 6, _settings())["api_nproc"])
        except VLMEvalFailure:
            pass

    threads = [threading.Thread(target=one, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(granted) == 16


def test_concurrency_is_shown_but_not_hashed() -> None:
    fp = {"model": {"kind": "endpoint"}, "concurrency": {"api_nproc": 4}}
    assert fingerprint.fingerprint_hash(fp) == fingerprint.fingerprint_hash({**fp, "concurrency": {"api_nproc": 16}})
