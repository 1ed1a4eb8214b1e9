"""The words our tables store, defined once: a run's status and the path that triggered it.

StrEnums, so a member is the string itself: stored, compared, serialised to JSON and shown exactly as the
plain value (the API's output does not change). The tuples keep a fixed order because the tables' CHECK
constraints are written from them (and compared with the migrations).
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """An eval run's (and its events') status: queued -> running -> one of the final three."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


RUN_STATUSES: tuple[RunStatus, ...] = tuple(RunStatus)
ACTIVE_STATUSES: tuple[RunStatus, ...] = (RunStatus.QUEUED, RunStatus.RUNNING)
"""A run that may still change: at most one per (task, model) unless forced."""
FINAL_STATUSES: tuple[RunStatus, ...] = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)
"""A run that is over: it holds no GPU and never changes again (backfill's re-sync aside)."""


class TriggeredBy(StrEnum):
    """The path an eval run came by (`eval_runs.triggered_by`), named after that path."""

    API = "api"  # the evals API: POST /api/evals/tasks/{task}/runs, or a checkpoint registered there
    AIRFLOW_REST = "airflow_rest"  # POST /api/v2/dags/eval_run/dagRuns with conf (also `vlmevals trigger`)
    FORM = "form"  # Airflow's trigger form: an eval_run DAG run whose conf names no path
    NIGHTLY = "nightly"  # the nightly_evals DAG
    SUITE = "suite"  # the eval_suite DAG
    CHECKPOINT = "checkpoint"  # the eval_checkpoint DAG (a checkpoint asset event)
    BACKFILL = "backfill"  # results imported from VLMEvalKit output folders


TRIGGER_SOURCES: tuple[TriggeredBy, ...] = tuple(TriggeredBy)


class ServerState(StrEnum):
    """A model server's state (`model_servers.state`): starting -> ready -> stopping -> stopped, or failed."""

    STARTING = "starting"  # requested by a run; its task waits for GPUs or the engine is loading the weights
    READY = "ready"  # the engine answers: runs send their requests
    STOPPING = "stopping"  # idle, asked to stop, or its task is ending: no run joins it any more
    STOPPED = "stopped"
    FAILED = "failed"  # did not start, or died twice, or its task was killed: `reason` says which


SERVER_STATES: tuple[ServerState, ...] = tuple(ServerState)
LIVE_SERVER_STATES: tuple[ServerState, ...] = (ServerState.STARTING, ServerState.READY)
"""A server that runs may join: at most one per (model, checkpoint)."""
