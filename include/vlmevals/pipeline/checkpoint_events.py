"""The `eval_checkpoint` DAG's first step: the asset events that triggered it, registered as checkpoints.

Airflow hands the task `triggering_asset_events` (asset -> events, each with an `extra`); every event's extra
is validated and registered by `vlmevals.runs.checkpoint_runs.register_events`, all or nothing, and the
TriggerDagRunOperator kwargs of the new runs are returned.
"""

from __future__ import annotations

import logging
from typing import Any

from vlmevals.core.constants import CHECKPOINT_ASSET_NAME

log = logging.getLogger(__name__)


def event_extras(triggering_asset_events: Any) -> list[Any]:
    """The `extra` of every event of the checkpoints asset, oldest first."""
    extras: list[Any] = []
    for asset, events in dict(triggering_asset_events or {}).items():
        if getattr(asset, "name", CHECKPOINT_ASSET_NAME) != CHECKPOINT_ASSET_NAME:  # Airflow normalises the uri
            continue
        extras += [getattr(e, "extra", None) for e in sorted(events, key=lambda e: getattr(e, "timestamp", 0))]
    return extras


def register_asset_events(triggering_asset_events: Any, dag_run: Any) -> list[dict[str, Any]]:
    from vlmevals.airflow.hooks import engine_for_tasks
    from vlmevals.db.engine import session_scope
    from vlmevals.runs.checkpoint_runs import register_events

    extras = event_extras(triggering_asset_events)
    if not extras:  # e.g. "Trigger" pressed in the UI: there is nothing to evaluate, and the user should know why
        raise ValueError(
            f"no event of the asset {CHECKPOINT_ASSET_NAME!r} triggered this run; register a checkpoint with "
            "POST /api/v2/assets/events (extra: model, step or label, weights_path or hub_revision) or "
            "POST /api/evals/models/{name}/checkpoints"
        )
    log.info("%s checkpoint event(s): %s", len(extras), extras)
    with session_scope(engine_for_tasks()) as s:  # every checkpoint and its runs, or none
        user = getattr(dag_run, "triggering_user_name", None)
        done = register_events(s, extras, parent_run_id=dag_run.run_id, user=user)
    kwargs: list[dict[str, Any]] = []
    for d in done:
        cp = d.checkpoint
        log.info(
            "REGISTERED checkpoint %s of %s (step %s, label %s) on suite %s",
            cp.id,
            cp.model,
            cp.step,
            cp.label,
            d.runs.suite,
        )
        for e in d.runs.started:
            log.info("STARTED %s x %s @ checkpoint %s -> eval run %s", e["task"], cp.model, cp.id, e["run_id"])
        kwargs += d.kwargs
    return kwargs
