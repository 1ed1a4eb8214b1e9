"""Airflow metadata-DB state the tests set directly (what an operator would click)."""

from __future__ import annotations


def set_eval_run_paused(paused: bool) -> bool | None:
    """Pause or unpause eval_run in Airflow's metadata DB; returns the state before (None: not serialised yet)."""
    from airflow.models import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as s:
        dm = s.scalar(select(DagModel).where(DagModel.dag_id == "eval_run"))
        if dm is None:
            return None
        before = bool(dm.is_paused)
        dm.is_paused = paused
        return before
