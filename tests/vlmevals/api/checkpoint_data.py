"""A model with checkpoints and their suite runs, stored directly with the ORM (as the checkpoint DAG would leave
them): shared by the API test of the scores endpoint and the browser test of the Checkpoints view.

Suite `mix`: acc (higher is better, 0-1, weight 2, tolerance 0.01 = 1 point), err (lower is better, 0-100,
tolerance 2 = 2 points), vqa (higher is better, 0-100, tolerance 1 = 1 point); mean tolerance 4/3 points.
Checkpoints of `trainee` in training order, with their normalised cells (acc, err, vqa) and average:
  step 0    30, 30, 20  -> 27.5
  step 100  60, 60, 50  -> 57.5    (an older, better acc run is not the latest; a later failed run is ignored)
  step 400  58, 55, 50  -> 55.25   acc flagged a checkpoint drop; vqa flagged by another check (not a drop);
                                   the average fell 2.25 > 4/3 points: an average drop
  step 1000 no runs     -> null    skipped by the drop rule
  rc1       60, 60, 50  -> 57.5    ties step 100: step 100 stays best (the earliest)
  final     99, -, -    -> 99      partial: never best
"""

from __future__ import annotations

import datetime as dt

from vlmevals.db.engine import session_scope
from vlmevals.db.models import Checkpoint, EvalRun, Model, Suite, SuiteTask, Task
from vlmevals.runs.board_entries import refresh_runs

TASKS = {  # name: (higher_is_better, metric_scale, regression_tolerance, weight)
    "acc": (True, 1.0, 0.01, 2.0),
    "err": (False, 100.0, 2.0, 1.0),
    "vqa": (True, 100.0, 1.0, 1.0),
}
CHECKPOINTS = [("0", 0, None), ("100", 100, None), ("400", 400, None), ("1000", 1000, None), ("rc1", None, "rc1")]
CHECKPOINTS.append(("final", None, "final"))
SCORES = {  # checkpoint key: raw primary metrics per task
    "0": {"acc": 0.30, "err": 70.0, "vqa": 20.0},
    "100": {"acc": 0.60, "err": 40.0, "vqa": 50.0},
    "400": {"acc": 0.58, "err": 45.0, "vqa": 50.0},
    "rc1": {"acc": 0.60, "err": 40.0, "vqa": 50.0},
    "final": {"acc": 0.99},
}
NOW = dt.datetime.now(dt.UTC)


def _run(task: Task, model: Model, ckpt: Checkpoint | None, score: float | None, **kw: object) -> EvalRun:
    fields: dict[str, object] = {"status": "completed", "finished_at": NOW, "triggered_by": "airflow_rest"}
    fields.update(kw)
    return EvalRun(task=task, model=model, checkpoint_id=ckpt.id if ckpt else None, primary_metric=score, **fields)


def seed_checkpoints(engine, model_suite: bool = True) -> dict[str, dict]:
    """Store the data above; returns {"checkpoints": key -> id, "runs": (key, task) -> latest run id}."""
    with session_scope(engine) as s:
        tasks = {}
        for name, (higher, scale, tol, _) in TASKS.items():
            tasks[name] = Task(
                name=name,
                display_name=name.upper(),
                vlmeval_data="MMBench_DEV_EN",
                higher_is_better=higher,
                metric_scale=scale,
                regression_tolerance=tol,
            )
        suite = Suite(name="mix", display_name="Mix")
        suite.members = [SuiteTask(task=t, position=i, weight=TASKS[n][3]) for i, (n, t) in enumerate(tasks.items())]
        s.add(suite)
        s.flush()
        model = Model(name="trainee", display_name="Trainee", vlmeval_model="trainee")
        model.suite_id = suite.id if model_suite else None
        other = Model(name="bystander", display_name="Bystander", vlmeval_model="bystander")
        s.add_all([model, other])
        s.flush()
        ckpts = {}
        for i, (key, step, label) in enumerate(CHECKPOINTS):
            ckpts[key] = Checkpoint(
                model_id=model.id,
                step=step,
                label=label,
                weights_path=f"/ckpt/{key}",
                created_at=NOW - dt.timedelta(hours=10 - i),
            )
        s.add_all(ckpts.values())
        s.flush()
        runs = {}
        for key, scores in SCORES.items():
            for t, score in scores.items():
                runs[(key, t)] = _run(tasks[t], model, ckpts[key], score)
        drop = {"kind": "checkpoint_drop", "baseline_metric": 0.60}
        runs[("400", "acc")].regression, runs[("400", "acc")].regression_detail = True, drop
        runs[("400", "vqa")].regression, runs[("400", "vqa")].regression_detail = True, {"method": "absolute"}
        older = dt.timedelta(days=2)
        extra = [
            _run(tasks["acc"], model, ckpts["100"], 0.90, finished_at=NOW - older),  # older, better: not latest
            _run(tasks["acc"], model, ckpts["100"], None, status="failed", finished_at=NOW + older),
            _run(tasks["acc"], model, None, 0.10),  # the model as registered: not a checkpoint
            _run(tasks["acc"], other, None, 0.50),
        ]
        s.add_all([*runs.values(), *extra])
        s.flush()
        refresh_runs(s.connection(), [r.id for r in [*runs.values(), *extra]])  # as the runs' completion does
        return {"checkpoints": {k: c.id for k, c in ckpts.items()}, "runs": {k: r.id for k, r in runs.items()}}
