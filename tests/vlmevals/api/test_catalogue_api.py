"""Tasks and models: list (paginated), get, create; every bad input is a 4xx naming the field."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

TASK = {
    "name": "okvqa-val",
    "display_name": "OK-VQA",
    "vlmeval_data": "A-OKVQA",
    "primary_metric_suffix": "_acc.csv",
    "primary_metric_key": "Overall",
    "higher_is_better": True,
    "metric_scale": 100.0,
}
MODEL = {
    "name": "qwen2-vl-2b",
    "display_name": "Qwen2-VL-2B",
    "vlmeval_model": "Qwen2-VL-2B-Instruct",
    "model_type": "vlm",
    "params_b": 2.2,
}


def test_create_get_and_list_tasks(clients) -> None:
    seeded = clients.viewer.get("/api/evals/tasks").json()["count"]
    r = clients.op.post("/api/evals/tasks", json=TASK)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "okvqa-val" and body["metric_scale"] == 100.0 and body["id"] > 0 and body["created_at"]
    assert clients.viewer.get("/api/evals/tasks/okvqa-val").json() == body
    listed = clients.viewer.get("/api/evals/tasks").json()
    assert listed["count"] == seeded + 1 and [t["name"] for t in listed["data"]] == sorted(
        t["name"] for t in listed["data"]
    )


def test_create_get_and_list_models(clients) -> None:
    seeded = clients.viewer.get("/api/evals/models").json()["count"]
    r = clients.admin.post("/api/evals/models", json=MODEL)
    assert r.status_code == 201, r.text
    assert clients.viewer.get("/api/evals/models/qwen2-vl-2b").json()["params_b"] == 2.2
    served = {**MODEL, "name": "served", "endpoint_base_url": "http://127.0.0.1:9/v1", "gpus": 0}
    assert clients.admin.post("/api/evals/models", json=served).status_code == 201
    assert clients.viewer.get("/api/evals/models").json()["count"] == seeded + 2


def test_pagination(clients) -> None:
    total = clients.viewer.get("/api/evals/models").json()["count"] + 7
    for i in range(7):
        assert clients.op.post("/api/evals/models", json={**MODEL, "name": f"m{i:02d}"}).status_code == 201
    names: list[str] = []
    for offset in range(0, total + 4, 4):
        page = clients.viewer.get(f"/api/evals/models?limit=4&offset={offset}").json()
        assert page["count"] == total and len(page["data"]) <= 4
        names += [m["name"] for m in page["data"]]
    assert len(names) == total and names == sorted(names) and len(set(names)) == total
    assert clients.viewer.get("/api/evals/models?limit=4&offset=100").json() == {"data": [], "count": total}
    for bad in ("limit=0", "limit=1001", "offset=-1", "limit=abc", "offset=99999999999999999999"):
        r = clients.viewer.get(f"/api/evals/models?{bad}")
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["detail"][0]["loc"][-1] in ("limit", "offset")


def test_unknown_names_are_404_with_the_known_ones(clients) -> None:
    r = clients.viewer.get("/api/evals/tasks/nope")
    assert r.status_code == 404 and "unknown task 'nope'" in r.json()["detail"]
    assert "demo-shapes-mcq" in r.json()["detail"]
    r = clients.viewer.get("/api/evals/models/nope")
    assert r.status_code == 404 and "unknown model 'nope'" in r.json()["detail"]


def test_duplicates_are_409(clients) -> None:
    r = clients.op.post("/api/evals/tasks", json={**TASK, "name": "demo-shapes-mcq"})
    assert r.status_code == 409 and "already exists" in r.json()["detail"]
    r = clients.op.post("/api/evals/models", json={**MODEL, "name": "demo-tiny-idefics3"})
    assert r.status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**TASK, "name": "Bad Name!"}, "name"),
        ({**TASK, "name": "x" * 200}, "name"),
        ({**TASK, "metric_scale": 0}, "metric_scale"),
        ({**TASK, "display_name": ""}, "display_name"),
        ({**TASK, "surprise": 1}, "surprise"),
        ({k: v for k, v in TASK.items() if k != "vlmeval_data"}, "vlmeval_data"),
        ({**TASK, "higher_is_better": "sometimes"}, "higher_is_better"),
    ],
)
def test_invalid_task_is_422_naming_the_field(clients, body, field) -> None:
    r = clients.op.post("/api/evals/tasks", json=body)
    assert r.status_code == 422, r.text
    assert any(field in d["loc"] for d in r.json()["detail"]), r.json()


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({**MODEL, "model_type": "audio"}, "model_type"),
        ({**MODEL, "params_b": -1}, "params_b"),
        ({**MODEL, "endpoint_base_url": "ftp://x"}, "endpoint_base_url must start with http"),
        ({**MODEL, "model_spec": {"model_path": "/x"}}, "model_spec needs a 'class'"),
        ({**MODEL, "model_spec": {"class": "X"}, "endpoint_base_url": "http://h/v1"}, "either model_spec"),
        ({**MODEL, "gpus": 1000}, "gpus"),
    ],
)
def test_invalid_model_is_422_with_a_message(clients, body, needle) -> None:
    r = clients.op.post("/api/evals/models", json=body)
    assert r.status_code == 422, r.text
    assert needle in r.text


def test_malformed_json_and_unstorable_text_are_422(clients) -> None:
    r = clients.op.post("/api/evals/tasks", content=b'{"name": "x",', headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    r = clients.op.post("/api/evals/tasks", json=[1, 2])
    assert r.status_code == 422
    r = clients.op.post("/api/evals/tasks", json={**TASK, "description": "nul \x00 byte"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "description"], "control characters"
    r = clients.op.post("/api/evals/models", json={**MODEL, "model_spec": {"class": "X", "p": "\x00"}})
    assert r.status_code == 422
    assert clients.viewer.get("/api/evals/tasks/okvqa-val").status_code == 404, "nothing half-stored"
    r = clients.viewer.get("/api/evals/tasks/%00")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "name"]
