"""`queue` is eval_run's branch: it returns the inference task whose pool slots fit the model's GPUs (1/2/4/8;
3 GPUs → the 4-slot task) and refuses a model needing more than 8, before any slot is taken.

The DAG is parsed by Airflow's DagBag and `queue` runs its own callable on real PostgreSQL (the demo task and a
copy of the demo model with the GPUs under test); only the task instance and DAG run handed to it are doubles
(what Airflow's task runner would pass). The branch it returns is then looked up in the parsed DAG: a task
downstream of `queue` in the pool `gpu` holding the expected slots. No worker runs, so no devices are involved:
the choice depends on the model's `gpus` alone (a worker leases the devices later, `vlmevals.gpu.leases`).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from sqlalchemy import select
from vlmevals.db.engine import session_scope
from vlmevals.db.models import Model
from vlmevals.runs import lifecycle as runs

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
TASK, DEMO = "demo-shapes-mcq", "demo-tiny-idefics3"


@pytest.fixture(scope="module")
def dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "eval_run.py"))
    assert bag.import_errors == {}
    return bag.dags["eval_run"]


class _TaskInstance:
    """What `queue` uses of Airflow's task instance: its XCom pushes."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _model_with_gpus(engine: Any, gpus: int) -> str:
    """The demo model (its local weights and spec) under another name, declaring `gpus` GPUs."""
    name = f"demo-{gpus}gpu"
    with session_scope(engine) as s:
        demo = s.scalar(select(Model).where(Model.name == DEMO))
        assert demo is not None
        s.add(
            Model(
                name=name,
                display_name=f"Demo on {gpus} GPUs",
                vlmeval_model=demo.vlmeval_model,
                model_spec=demo.model_spec,
                gpus=gpus,
                launch_mode="single",
            )
        )
    return name


def _run_queue(dag: Any, model: str, ti: _TaskInstance) -> str:
    queue = dag.task_dict["queue"]
    dag_run = SimpleNamespace(
        dag_id=dag.dag_id,
        run_id=f"manual__{model}",
        run_type="manual",
        triggering_user_name="tester",
        conf={"task": TASK, "model": model},
    )
    params = {name: dag.params[name] for name in dag.params}
    context = {"params": params, "dag_run": dag_run, "ti": ti}  # what Airflow's task runner would provide
    callable_globals = queue.python_callable.__globals__
    saved = callable_globals["get_current_context"]
    callable_globals["get_current_context"] = lambda: context
    try:
        branch: list[str] = queue.python_callable()
    finally:
        callable_globals["get_current_context"] = saved
    return branch[0]


@pytest.mark.parametrize(("gpus", "slots"), [(2, 2), (3, 4), (8, 8)])
def test_queue_picks_the_inference_task_holding_the_models_gpus(
    dag: Any, seeded: Any, demo_assets: Any, gpus: int, slots: int
) -> None:
    ti = _TaskInstance()
    branch = _run_queue(dag, _model_with_gpus(seeded, gpus), ti)
    assert branch == f"inference_{slots}gpu"
    assert branch in dag.task_dict["queue"].downstream_task_ids, "a branch must follow queue directly"
    chosen = dag.task_dict[branch]
    assert (chosen.pool, chosen.pool_slots) == ("gpu", slots), f"{gpus} GPUs must hold {slots} slots"
    info = ti.pushed["run"]
    assert (info["slots"], info["branch"]) == (slots, [branch])
    with session_scope(seeded) as s:
        assert runs.get_run(s, info["eval_run_id"]).status == "queued"


def test_queue_refuses_a_model_needing_more_than_8_gpus(dag: Any, seeded: Any, demo_assets: Any) -> None:
    ti = _TaskInstance()
    with pytest.raises(AirflowFailException) as caught:  # final: no retry can make 9 GPUs fit
        _run_queue(dag, _model_with_gpus(seeded, 9), ti)
    message = str(caught.value)
    assert "model 'demo-9gpu' cannot run: it needs 9 GPUs" in message, message
    assert "lower the model's gpus to 8 or fewer" in message, message
    assert ti.pushed == {}, "no branch was chosen"
    with session_scope(seeded) as s:
        run = runs.get_run(s, 1)
        assert run.status == "failed" and "needs 9 GPUs" in (run.error or ""), run.error
