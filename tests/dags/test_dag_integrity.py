"""Every DAG file, checked the way Airflow checks its example DAGs: it imports through DagBag without errors,
pulls in no heavy library, and opens no connection while parsing. (How fast it parses is a figure, not a pass/fail
check on a shared machine: `bench/footprint_bench.py --parse-only` prints it.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))

PROBE = r"""
import json, os, socket, sys
attempts = []
real_connect = socket.socket.connect
def spy(self, address):
    attempts.append(str(address))
    raise OSError("no connections while parsing")
socket.socket.connect = spy
import airflow.sdk  # the framework itself, before the DAG file, so only the DAG file is judged
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dag_ids": sorted(bag.dag_ids),
    "heavy": sorted(m for m in ("vlmeval", "torch", "transformers", "pandas", "vlmevals.pipeline.steps", "vlmevals.db")
                    if m in sys.modules),
    "connects": attempts,
}))
"""


@pytest.fixture(scope="module")
def parsed() -> dict[str, dict]:
    out = {}
    env = {**os.environ, "AIRFLOW__CORE__UNIT_TEST_MODE": "False"}
    for f in DAG_FILES:
        res = subprocess.run(
            [sys.executable, "-c", PROBE, str(f)], capture_output=True, text=True, env=env, timeout=120
        )
        assert res.returncode == 0, res.stderr[-3000:]
        out[f.stem] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def test_there_are_dags() -> None:
    assert "eval_run" in {f.stem for f in DAG_FILES}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_imports_without_errors_and_id_is_file_stem(parsed: dict[str, dict], path: Path) -> None:
    got = parsed[path.stem]
    assert got["errors"] == {}
    assert path.stem in got["dag_ids"]


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_parse_is_light(parsed: dict[str, dict], path: Path) -> None:
    got = parsed[path.stem]
    assert got["heavy"] == [], f"heavy imports at parse time: {got['heavy']}"
    assert got["connects"] == [], f"connections while parsing: {got['connects']}"


def test_eval_run_shape() -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags" / "eval_run.py")).dags["eval_run"]
    assert dag.schedule is None, f"eval_run is triggered only (form, REST, evals API), not scheduled: {dag.schedule!r}"
    ids = set(dag.task_dict)
    assert {
        "queue",
        "inference",
        "inference_2gpu",
        "inference_4gpu",
        "inference_8gpu",
        "scoring",
        "ingest_metrics",
        "finalize",
        "start_server",
        "wait_for_server",
        "inference_served",
    } == ids
    for tid, slots in [("inference", 1), ("inference_2gpu", 2), ("inference_4gpu", 4), ("inference_8gpu", 8)]:
        t = dag.task_dict[tid]
        assert (t.pool, t.pool_slots, t.queue, t.retries) == ("gpu", slots, "gpu", 2)
    assert dag.task_dict["finalize"].is_teardown
    assert dag.task_dict["finalize"].on_failure_fail_dagrun, "a failed eval run must fail its DAG run"
    # a served run holds no GPU slot: the server's task does; it waits without holding a worker slot either
    served, waiting = dag.task_dict["inference_served"], dag.task_dict["wait_for_server"]
    assert served.pool != "gpu" and served.upstream_task_ids == {"queue", "wait_for_server"}
    assert waiting.mode == "reschedule" and waiting.upstream_task_ids == {"queue", "start_server"}
    assert dag.task_dict["start_server"].skip_when_already_exists, "every run may trigger its server's DAG run"
    assert "scoring" in served.downstream_task_ids
    params = dag.params
    for name in ("task", "model", "judge", "reuse", "limit", "eval_run_id"):
        p = params.get_param(name)
        assert p.schema.get("title") and p.description, name


def test_model_server_holds_the_servers_gpus_and_always_finalizes() -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags" / "model_server.py")).dags["model_server"]
    assert dag.schedule is None
    for tid, slots in [("serve", 1), ("serve_2gpu", 2), ("serve_4gpu", 4), ("serve_8gpu", 8)]:
        t = dag.task_dict[tid]
        assert (t.pool, t.pool_slots, t.queue, t.retries) == ("gpu", slots, "gpu", 0)
        assert t.upstream_task_ids == {"plan"}
    assert dag.task_dict["finalize"].is_teardown


def test_eval_checkpoint_is_scheduled_on_the_checkpoints_asset() -> None:
    from airflow.dag_processing.dagbag import DagBag
    from vlmevals.core.constants import CHECKPOINT_ASSET_NAME, CHECKPOINT_ASSET_URI

    dag = DagBag(dag_folder=str(ROOT / "dags" / "eval_checkpoint.py")).dags["eval_checkpoint"]
    assets = list(dag.timetable.asset_condition.objects)
    assert [(a.name, a.uri.rstrip("/")) for a in assets] == [(CHECKPOINT_ASSET_NAME, CHECKPOINT_ASSET_URI)]
    assert set(dag.task_dict) == {"register", "trigger_eval_run"}
    assert dag.task_dict["register"].retries == 0
    assert dag.task_dict["trigger_eval_run"].upstream_task_ids == {"register"}
