"""Checkpoints through the API: register one (its suite's runs start, each carrying the checkpoint), every bad
input refused with the field named and nothing left behind, the model's suite, listing in step order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from vlmevals.db.engine import session_scope
from vlmevals.db.models import Checkpoint, EvalRun, Model
from vlmevals.vlmevalkit import hub

from tests.doubles.fake_hub import FakeHub, fake_hub

pytestmark = pytest.mark.integration
DEMO = "demo-tiny-idefics3"
CKPTS = f"/api/evals/models/{DEMO}/checkpoints"
DEMO_TASKS = ["demo-shapes-mcq", "demo-colors-vqa", "demo-shapes-yorn"]


def _counts(engine) -> tuple[int, int]:
    with session_scope(engine) as s:
        return (
            s.scalar(select(func.count()).select_from(Checkpoint)) or 0,
            s.scalar(select(func.count()).select_from(EvalRun)) or 0,
        )


@pytest.fixture()
def weights(tmp_path: Path) -> str:
    folder = tmp_path / "ckpt-100"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"w")
    return str(folder)


def test_register_starts_the_suite_runs_of_the_checkpoint(clients, seeded, weights) -> None:
    r = clients.op.post(CKPTS, json={"step": 100, "weights_path": weights, "suite": "demo"})
    assert r.status_code == 201, r.text
    got = r.json()
    cp = got["checkpoint"]
    assert (cp["model"], cp["step"], cp["label"], cp["weights_path"], cp["hub_revision"]) == (
        DEMO,
        100,
        None,
        weights,
        None,
    )
    assert cp["created_by"] == "op" and cp["created_at"] and cp["id"] > 0
    assert got["suite"] == "demo" and got["already_active"] == [] and got["failed"] == []
    assert [e["task"] for e in got["started"]] == DEMO_TASKS
    for e in got["started"]:
        run = clients.viewer.get(f"/api/evals/runs/{e['run_id']}").json()
        assert run["checkpoint"] == {"id": cp["id"], "step": 100, "label": None}
        assert run["status"] == "queued" and run["dag_run_id"] == e["dag_run_id"]
        assert e["dag_run_id"].startswith("evals_api__") and run["triggered_by"] == "api"
    with session_scope(seeded) as s:
        ids = set(s.scalars(select(EvalRun.checkpoint_id)))
    assert ids == {cp["id"]}
    listed = clients.viewer.get("/api/evals/tasks/demo-shapes-mcq/runs").json()["data"]
    assert [r["checkpoint"] for r in listed] == [{"id": cp["id"], "step": 100, "label": None}]


def test_asset_events_runs_say_they_came_from_the_checkpoint_dag(seeded, weights) -> None:
    """What the eval_checkpoint DAG's first step records: runs triggered_by `checkpoint`, also in their conf."""
    from vlmevals.runs.checkpoint_runs import register_events

    event = {"model": DEMO, "step": 7, "weights_path": weights, "suite": "demo"}
    with session_scope(seeded) as s:
        (got,) = register_events(s, [event], parent_run_id="a", user=None)
    assert [k["conf"]["triggered_by"] for k in got.kwargs] == ["checkpoint"] * len(DEMO_TASKS)
    with session_scope(seeded) as s:
        assert set(s.scalars(select(EvalRun.triggered_by))) == {"checkpoint"}


def test_the_model_suite_is_the_default_and_neither_is_refused(clients, seeded, weights) -> None:
    before = _counts(seeded)
    r = clients.op.post(CKPTS, json={"step": 1, "weights_path": weights})
    assert r.status_code == 422, r.text
    assert "suite" in r.json()["detail"] and f"PATCH /api/evals/models/{DEMO}" in r.json()["detail"]
    assert _counts(seeded) == before
    p = clients.op.patch(f"/api/evals/models/{DEMO}", json={"suite": "demo"})
    assert p.status_code == 200 and p.json()["suite"] == "demo", p.text
    assert clients.viewer.get(f"/api/evals/models/{DEMO}").json()["suite"] == "demo"
    r = clients.op.post(CKPTS, json={"label": "final", "weights_path": weights})
    assert r.status_code == 201, r.text
    assert r.json()["suite"] == "demo" and len(r.json()["started"]) == 3
    bad = clients.op.patch(f"/api/evals/models/{DEMO}", json={"suite": "nope"})
    assert bad.status_code == 422 and "suite" in bad.json()["detail"]
    assert clients.viewer.patch(f"/api/evals/models/{DEMO}", json={"suite": None}).status_code == 403


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"weights_path": "WEIGHTS", "suite": "demo"}, 422, ["step", "label"]),
        ({"step": 5, "suite": "demo"}, 422, ["weights_path", "hub_revision"]),
        ({"step": 5, "weights_path": "WEIGHTS", "hub_revision": "main", "suite": "demo"}, 422, ["exactly one"]),
        ({"step": -1, "weights_path": "WEIGHTS", "suite": "demo"}, 422, ["step", "greater than or equal to 0"]),
        ({"step": "5", "weights_path": "WEIGHTS", "suite": "demo"}, 422, ["step"]),
        ({"label": "a b", "weights_path": "WEIGHTS", "suite": "demo"}, 422, ["label"]),
        ({"step": 5, "weights_path": "/no/such/folder", "suite": "demo"}, 422, ["weights_path", "does not exist"]),
        ({"step": 5, "weights_path": "relative/dir", "suite": "demo"}, 422, ["weights_path", "absolute"]),
        ({"step": 5, "weights_path": "WEIGHTS", "suite": "nope"}, 404, ["unknown suite", "'nope'"]),
        ({"step": 5, "weights_path": "WEIGHTS", "suite": "demo", "extra": 1}, 422, ["extra"]),
    ],
)
def test_bad_checkpoints_refused_and_nothing_stored(clients, seeded, weights, body, code, words) -> None:
    before = _counts(seeded)
    body = {k: (weights if v == "WEIGHTS" else v) for k, v in body.items()}
    r = clients.op.post(CKPTS, json=body)
    assert r.status_code == code, r.text
    text = str(r.json()["detail"])
    assert all(w in text for w in words), text
    assert _counts(seeded) == before


def test_unknown_model_404_viewer_403(clients, seeded, weights) -> None:
    r = clients.op.post("/api/evals/models/no-such/checkpoints", json={"step": 1, "weights_path": weights})
    assert r.status_code == 404 and "unknown model" in r.json()["detail"]
    assert clients.viewer.get("/api/evals/models/no-such/checkpoints").status_code == 404
    assert clients.viewer.post(CKPTS, json={"step": 1, "weights_path": weights, "suite": "demo"}).status_code == 403
    assert _counts(seeded) == (0, 0)


def test_duplicate_step_or_label_is_409_naming_the_checkpoint(clients, seeded, weights) -> None:
    first = clients.op.post(CKPTS, json={"step": 7, "label": "seven", "weights_path": weights, "suite": "demo"})
    assert first.status_code == 201, first.text
    cp_id = first.json()["checkpoint"]["id"]
    before = _counts(seeded)
    for body in ({"step": 7}, {"label": "seven"}, {"step": 8, "label": "seven"}):
        r = clients.op.post(CKPTS, json={**body, "weights_path": weights, "suite": "demo"})
        assert r.status_code == 409, r.text
        assert f"checkpoint {cp_id}" in r.json()["detail"] and "new step or label" in r.json()["detail"]
        assert r.json()["existing_checkpoint_id"] == cp_id and "existing_run_id" not in r.json()
    assert _counts(seeded) == before


def test_registry_model_cannot_take_weights(clients, seeded, weights) -> None:
    r = clients.op.post(
        "/api/evals/models/internvl2.5-2b/checkpoints", json={"step": 1, "weights_path": weights, "suite": "demo"}
    )
    assert r.status_code == 422 and "weights_path" in r.json()["detail"] and "model_spec" in r.json()["detail"]
    assert _counts(seeded) == (0, 0)


def test_airflow_refusing_every_run_leaves_nothing(clients, seeded, weights, monkeypatch) -> None:
    from vlmevals.airflow import dag_runs

    def refuse(*args, **kwargs):
        raise dag_runs.AirflowTriggerError("the 'eval_run' DAG is not known to Airflow yet")

    monkeypatch.setattr(dag_runs, "create_dag_run", refuse)
    r = clients.op.post(CKPTS, json={"step": 3, "weights_path": weights, "suite": "demo"})
    assert r.status_code == 503 and "nothing was registered" in r.json()["detail"], r.text
    assert _counts(seeded) == (0, 0)


def test_listing_is_by_step_then_time_and_paged(clients, seeded, weights) -> None:
    for body in ({"label": "final"}, {"step": 400}, {"step": 0}, {"step": 100}):
        r = clients.op.post(CKPTS, json={**body, "weights_path": weights, "suite": "demo"})
        assert r.status_code == 201, r.text
    got = clients.viewer.get(CKPTS).json()
    assert got["count"] == 4
    assert [(c["step"], c["label"]) for c in got["data"]] == [(0, None), (100, None), (400, None), (None, "final")]
    page = clients.viewer.get(f"{CKPTS}?limit=2&offset=1").json()
    assert [c["step"] for c in page["data"]] == [100, 400] and page["count"] == 4


@pytest.fixture()
def hub_model(seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A model whose weights come from a repo of the fake Hub."""
    with fake_hub() as h:
        monkeypatch.setenv("HF_ENDPOINT", h.endpoint)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        hub._online_cache.clear()
        h.commit("org/tiny", {"config.json": b"{}"}, branch="main")
        h.commit("org/tiny", {"config.json": b"{}"}, branch="step-200")
        with session_scope(seeded) as s:
            spec = {"class": "DOCLING", "model_path": "org/tiny", "max_new_tokens": 1}
            s.add(Model(name="hub-tiny", display_name="Hub tiny", vlmeval_model="HubTiny", model_spec=spec))
        yield h


def test_hub_revision_must_resolve(clients, seeded, hub_model) -> None:
    url = "/api/evals/models/hub-tiny/checkpoints"
    ok = clients.op.post(url, json={"step": 200, "hub_revision": "step-200", "suite": "demo"})
    assert ok.status_code == 201, ok.text
    assert ok.json()["checkpoint"]["hub_revision"] == "step-200"
    before = _counts(seeded)
    bad = clients.op.post(url, json={"step": 300, "hub_revision": "step-300", "suite": "demo"})
    assert bad.status_code == 422, bad.text
    assert "hub_revision" in bad.json()["detail"] and "org/tiny" in bad.json()["detail"]
    assert _counts(seeded) == before
    local = clients.op.post(CKPTS, json={"step": 1, "hub_revision": "main", "suite": "demo"})
    assert local.status_code == 422 and "give weights_path instead" in local.json()["detail"]
