"""Airflow plugin: mounts the evals API at /api/evals and adds "Leaderboard" to the UI navigation.

Thin on purpose: the API lives in vlmevals.api (nothing here imports vlmeval, torch or pandas). `/api/evals`
is accepted by Airflow 3 (only /api/v2, /ui, /execution, /auth and /pluginsv2 are reserved) and, being mounted
before Airflow's own catch-all `/api/{path}` route, takes precedence for its paths.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin
from vlmevals.api.app import create_app
from vlmevals.core.constants import API_PREFIX

# Airflow's own path prefix, if it is served below one (AIRFLOW__API__BASE_URL=http://host/airflow)
BASE_PATH = urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


class EvalsPlugin(AirflowPlugin):
    name = "vlm_evals"
    fastapi_apps = [{"name": "vlm_evals_api", "app": create_app(), "url_prefix": API_PREFIX}]
    external_views = [
        {
            "name": "Leaderboard",
            "href": f"{BASE_PATH}{API_PREFIX}/ui/leaderboard",
            "url_route": "leaderboard",
            "destination": "nav",
            "nav_top_level": True,
            "icon": f"{BASE_PATH}{API_PREFIX}/ui/static/icon.svg",
        }
    ]
