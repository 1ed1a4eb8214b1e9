"""Airflow's FastAPI security dependencies, as the evals API uses them: Airflow's users, roles and auth manager.

Imported when the api-server mounts the plugin's app (never at DAG-parse time), so at module level.
"""

from __future__ import annotations

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag, requires_authenticated

__all__ = [
    "BaseUser",
    "DagAccessEntity",
    "DagDetails",
    "GetUserDep",
    "may_trigger",
    "requires_access_dag",
    "requires_authenticated",
]


def may_trigger(user: BaseUser, dag_id: str) -> bool:
    """Whether the configured auth manager lets `user` create runs of `dag_id`."""
    from airflow.api_fastapi.app import get_auth_manager  # the app's manager, set up when the api-server starts

    return bool(
        get_auth_manager().is_authorized_dag(
            method="POST", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
        )
    )
