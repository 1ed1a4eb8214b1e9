"""The README's MLflow screenshot: a real `mlflow server` (scripts/setup_mlflow_server.sh), a checkpoint model's
suite scores delivered by our MlflowExporter (records built in memory: no database needed), the real MLflow UI
in headless Chromium. Run: PYTHONPATH=include python bench/mlflow_screenshot.py docs/mlflow-checkpoints.png
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
MLFLOW = ROOT / ".local" / "tools" / "mlflow-server" / "bin" / "mlflow"
CURVES = {  # task: score per checkpoint step
    "demo-shapes-mcq": {0: 0.25, 1000: 0.41, 2000: 0.58, 3000: 0.66, 4000: 0.71},
    "demo-colors-yn": {0: 0.50, 1000: 0.55, 2000: 0.63, 3000: 0.62, 4000: 0.69},
}


def main(out: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = Path(tempfile.mkdtemp(prefix="mlflow-shot-"))
    url = f"http://127.0.0.1:{port}"
    cmd = [str(MLFLOW), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    cmd += ["--backend-store-uri", f"sqlite:///{home}/mlflow.db", "--artifacts-destination", str(home / "a")]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the server venv's full mlflow (with its UI)
    server = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env
    )
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        os.environ.update({"MLFLOW_TRACKING_URI": url, "EVALS_EXPORTERS": "mlflow"})
        from vlmevals.core.settings import get_settings
        from vlmevals.core.vocabulary import RunStatus
        from vlmevals.exports.mlflow_exporter import MlflowExporter
        from vlmevals.exports.records import ExportRecord, leaderboard_link

        exporter = MlflowExporter(get_settings())
        t0 = dt.datetime(2026, 12, 6, 9, tzinfo=dt.UTC)
        run_id, ref = 0, ""
        for task, curve in CURVES.items():
            for step, score in curve.items():
                run_id += 1
                at = t0 + dt.timedelta(minutes=run_id)
                record = ExportRecord(
                    run_id=run_id, status=RunStatus.COMPLETED, task=task, model="llava-ft-7b", finished_at=at,
                    created_at=at, primary_metric=score, ci_low=score - 0.06, ci_high=score + 0.06, samples_total=400,
                    samples_failed=0, checkpoint_step=step, suite="core", link=leaderboard_link(task, run_id),
                )  # fmt: skip
                ref = exporter.deliver(record)
        exp = exporter.client.get_run(ref).info.experiment_id
        page = f"{url}/#/experiments/{exp}/runs/{ref}/model-metrics"
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            tab = browser.new_page(viewport={"width": 1400, "height": 900})
            tab.goto(page, wait_until="load", timeout=90_000)
            try:  # the assistant side panel hides half the charts
                tab.get_by_role("button", name="Close").first.click(timeout=5000)
            except Exception as err:
                print(f"assistant panel left open: {err}")
            tab.locator(".js-plotly-plot").first.wait_for(timeout=90_000)
            tab.wait_for_timeout(3000)
            tab.screenshot(path=str(out))
            browser.close()
        print(f"{out}: {page}")
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/mlflow-checkpoints.png"))
