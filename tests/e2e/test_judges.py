"""An eval run judged by an LLM on the live stack, end to end: inference (`--mode infer`) in the GPU slot, then
scoring through the judge gateway after the slot is released, against the OpenAI-protocol judge double on the
address the stack was started with (tests/conftest.py: JUDGE_PORT); then re-judged through the API with another
judge, and re-judged again identically: answered from the judge cache, the double asked nothing.

The task is a custom MCQ of two options (the demo shapes with A and B only, texts the demo model never says): on
half of it the demo model answers "C", which VLMEvalKit cannot match to an option, so the judge must extract it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest
from vlmevals.core.settings import get_settings

from tests.doubles.openai_server import ServerHandle
from tests.e2e.plugin_helpers import client, wait_dag, wait_dag_run_over, wait_run

pytestmark = pytest.mark.e2e
TASK, DATA, MODEL = "judged-mcq", "DEMO_JUDGED_MCQ", "demo-tiny-idefics3"


def _two_option_task(c: httpx.Client, demo_mcq: Path) -> None:
    """TASK in the catalogue, its TSV in LMUData: the demo shapes' questions and images, options A and B only."""
    import pandas as pd

    table = pd.read_csv(demo_mcq, sep="\t").drop(columns=["C", "D"])
    table["A"], table["B"] = "the first picture", "the second picture"
    table["answer"] = ["A" if i % 2 == 0 else "B" for i in range(len(table))]
    table.to_csv(get_settings().lmu_data / f"{DATA}.tsv", sep="\t", index=False)
    body = {
        "name": TASK,
        "display_name": "Judged MCQ",
        "vlmeval_data": DATA,
        "vlmeval_dataset_class": "CustomMCQDataset",
    }
    r = c.post("/api/evals/tasks", json=body)
    assert r.status_code == 201, r.text


def _finished(c: httpx.Client, run_id: int) -> dict[str, Any]:
    """The run once over, its DAG run too (finalize included), in full."""
    run = wait_run(c, run_id, timeout_s=600)
    assert run["status"] == "completed", run
    assert wait_dag_run_over(c, run["dag_run_id"], timeout_s=120) == "success"
    return dict(c.get(f"/api/evals/runs/{run_id}").json())


def _task_instances(c: httpx.Client, dag_run_id: str) -> dict[str, dict[str, Any]]:
    r = c.get(f"/api/v2/dags/eval_run/dagRuns/{dag_run_id}/taskInstances")
    assert r.status_code == 200, r.text
    return {ti["task_id"]: ti for ti in r.json()["task_instances"]}


def _rejudge(c: httpx.Client, source: int, judge: str) -> dict[str, Any]:
    r = c.post(f"/api/evals/runs/{source}/rejudge", json={"judge": judge})
    assert r.status_code == 201, r.text
    return _finished(c, r.json()["id"])


def test_llm_judged_run_then_rejudged_twice_the_second_from_the_cache(
    live_stack: Any, seeded: Any, stack_judge: ServerHandle, demo_assets: dict[str, Path]
) -> None:
    admin = client(live_stack, "admin")
    wait_dag(admin)
    _two_option_task(admin, demo_assets["DEMO_SHAPES_MCQ"])
    r = admin.post(f"/api/evals/tasks/{TASK}/runs", json={"model_name": MODEL, "options": {"judge": "gpt-4o-mini"}})
    assert r.status_code == 201, r.text
    run = _finished(admin, r.json()["id"])
    asked = stack_judge.stats()

    tis = _task_instances(admin, run["dag_run_id"])
    assert tis["inference"]["state"] == "success" and tis["scoring"]["state"] == "success"
    inferred_until = dt.datetime.fromisoformat(tis["inference"]["end_date"]).timestamp()
    assert asked["first_chat_at"] >= inferred_until, "the judge was asked only after inference gave its GPU slot back"
    usage = run["judge"]
    assert usage is not None and usage["endpoint"] == stack_judge.base_url, "scoring judged through the gateway"
    assert usage["requests"] >= 2, "the probe and at least one prediction the judge had to extract"
    # identical extraction prompts (same question, options and "C") are answered once, then from the cache
    assert usage["answered"] == asked["chat_completions"] and usage["requests"] == usage["answered"] + usage["cached"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (asked["prompt_tokens"], asked["completion_tokens"])
    assert run["fingerprint"]["judge"]["name"] == "gpt-4o-mini" and run["samples_judge_failed"] == 0

    stack_judge.reset_stats()
    first = _rejudge(admin, run["id"], "gpt-4-turbo")
    assert first["source_run_id"] == run["id"] and first["rejudged"] == f"re-judged from #{run['id']} with gpt-4-turbo"
    assert "inference" not in _task_instances(admin, first["dag_run_id"]) or (
        _task_instances(admin, first["dag_run_id"])["inference"]["state"] == "skipped"
    ), "a re-judge infers nothing"
    asked = stack_judge.stats()
    assert asked["chat_completions"] == first["judge"]["answered"] > 0 and first["judge"]["requests"] >= 2
    assert asked["last_model"] != "gpt-4o-mini-2024-07-18", "the new judge's name was sent"

    stack_judge.reset_stats()
    second = _rejudge(admin, run["id"], "gpt-4-turbo")
    assert stack_judge.stats()["chat_completions"] == 0, "the identical re-judge asked the judge nothing"
    assert second["judge"]["cached"] == second["judge"]["requests"] == first["judge"]["requests"]
    assert second["primary_metric"] == pytest.approx(first["primary_metric"])
