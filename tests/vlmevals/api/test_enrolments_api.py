"""Enrolments through the evals API, as mounted in Airflow's api-server app with real users and JWTs."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration
URL = "/api/evals/enrolments"


def test_enrol_list_unenrol(clients) -> None:
    r = clients.op.post(URL, json={"task": "demo-shapes-mcq"})
    assert r.status_code == 201, r.text
    assert r.json()["scope"] == "task" and r.json()["model"] is None and r.json()["created_by"] == "op"
    assert clients.op.post(URL, json={"task": "demo-shapes-mcq"}).status_code == 200, "already enrolled"
    got = clients.viewer.get(URL).json()
    assert got["count"] == 1
    models = {m["name"] for m in clients.viewer.get("/api/evals/models", params={"limit": 1000}).json()["data"]}
    assert {(p["task"], p["model"]) for p in got["pairs"]} == {("demo-shapes-mcq", m) for m in models}
    # one pair out of an enrolled task: stored as an exclusion
    r = clients.op.delete(URL, params={"task": "demo-shapes-mcq", "model": "internvl2.5-2b"})
    assert r.status_code == 200 and "excluded" in r.json()["detail"]
    got = clients.viewer.get(URL).json()
    assert ("demo-shapes-mcq", "internvl2.5-2b") not in {(p["task"], p["model"]) for p in got["pairs"]}
    assert [e["enabled"] for e in got["data"]] == [True, False]
    assert clients.op.delete(URL, params={"task": "demo-shapes-mcq"}).json()["detail"].endswith("unenrolled")
    assert clients.viewer.get(URL).json()["pairs"] == []


def test_bad_requests_name_the_fix(clients) -> None:
    r = clients.op.post(URL, json={})
    assert r.status_code == 422 and "give a task, a model, a suite" in r.text
    r = clients.op.post(URL, json={"task": "demo-shapes-mcq", "suite": "demo"})
    assert r.status_code == 422 and "task, suite: give a task or a suite, not both" in r.text
    r = clients.op.post(URL, json={"suite": "ghost", "model": "demo-tiny-idefics3"})
    assert r.status_code == 404 and "unknown suite 'ghost'" in r.json()["detail"]
    r = clients.op.post(URL, json={"task": "ghost"})
    assert r.status_code == 404 and "unknown task 'ghost'" in r.json()["detail"]
    r = clients.op.delete(URL, params={"model": "demo-tiny-idefics3"})
    assert r.status_code == 404 and "is not enrolled" in r.json()["detail"]
    assert clients.op.post(URL, json={"task": "demo-shapes-mcq", "extra": 1}).status_code == 422


def test_writes_need_trigger_rights(clients) -> None:
    assert clients.anon.get(URL).status_code == 401
    assert clients.viewer.post(URL, json={"task": "demo-shapes-mcq"}).status_code == 403
    assert clients.viewer.delete(URL, params={"task": "demo-shapes-mcq"}).status_code == 403
    assert clients.viewer.get(URL).json()["count"] == 0


def test_enrol_a_suite(clients) -> None:
    r = clients.op.post(URL, json={"suite": "demo", "model": "demo-tiny-idefics3"})
    assert r.status_code == 201, r.text
    assert (r.json()["scope"], r.json()["suite"], r.json()["task"]) == ("suite-model", "demo", None)
    pairs = {(p["task"], p["model"]) for p in clients.viewer.get(URL).json()["pairs"]}
    assert pairs == {(t, "demo-tiny-idefics3") for t in ("demo-shapes-mcq", "demo-colors-vqa", "demo-shapes-yorn")}
    r = clients.op.delete(URL, params={"suite": "demo", "model": "demo-tiny-idefics3"})
    assert r.status_code == 200 and r.json()["detail"].endswith("unenrolled")


def test_model_api_nproc(clients) -> None:
    body = {"name": "served-x", "display_name": "x", "vlmeval_model": "x", "endpoint_base_url": "http://h:1/v1"}
    r = clients.op.post("/api/evals/models", json={**body, "api_nproc": 0})
    assert r.status_code == 422 and "api_nproc" in r.text
    r = clients.op.post("/api/evals/models", json={**body, "api_nproc": 12})
    assert r.status_code == 201 and r.json()["api_nproc"] == 12, r.text
    r = clients.op.patch("/api/evals/models/served-x", json={"api_nproc": 300})
    assert r.status_code == 422 and "api_nproc" in r.text
    r = clients.op.patch("/api/evals/models/served-x", json={"api_nproc": 2})
    assert r.status_code == 200 and r.json()["api_nproc"] == 2
    assert clients.viewer.get("/api/evals/models/served-x").json()["api_nproc"] == 2
    assert clients.viewer.patch("/api/evals/models/served-x", json={"api_nproc": 3}).status_code == 403
