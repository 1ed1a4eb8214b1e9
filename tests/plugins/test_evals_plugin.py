"""The plugin as Airflow loads it: the evals API mounted at /api/evals and a "Leaderboard" nav entry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_plugin_registers_api_and_nav_entry() -> None:
    from airflow import plugins_manager
    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    apps, _ = plugins_manager.get_fastapi_plugins()
    ours = [a for a in apps if a["name"] == "vlm_evals_api"]
    assert len(ours) == 1 and ours[0]["url_prefix"] == "/api/evals"
    assert not any(ours[0]["url_prefix"].startswith(p) for p in RESERVED_URL_PREFIXES)
    views, _ = plugins_manager._get_ui_plugins()
    view = next(v for v in views if v["name"] == "Leaderboard")
    ExternalViewResponse.model_validate(view)  # what the UI's plugin endpoint serves
    assert view["href"].endswith("/api/evals/ui/leaderboard") and view["url_route"] == "leaderboard"
    assert view["destination"] == "nav"


def test_plugin_import_stays_light() -> None:
    """Plugins load in every Airflow process: no VLMEvalKit, torch or pandas at import time."""
    code = (
        "import sys; sys.path.insert(0, 'plugins'); import evals_plugin; "
        "print(sorted(m for m in ('vlmeval', 'torch', 'pandas') if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "[]"
