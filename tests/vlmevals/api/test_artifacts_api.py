"""Artifact listing and content, and every way of trying to read outside the run's folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.vlmevals.api.conftest import add_run

pytestmark = pytest.mark.integration
SECRET = "top-secret-outside-the-run"


@pytest.fixture()
def run_dir(clients, seeded, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (tmp_path / "secret.txt").write_text(SECRET)
    art = tmp_path / "runs" / "1"
    (art / "DemoModel").mkdir(parents=True)
    (art / "worker_stderr.log").write_text("line 1\nline 2\n")
    (art / "DemoModel" / "DemoModel_DEMO_acc.csv").write_text("split,Overall\nnone,0.5\n")
    (art / "DemoModel" / "preds.xlsx").write_bytes(b"PK\x03\x04 not really")
    (art / "page.html").write_text("<script>alert(1)</script>")
    os.symlink("DemoModel/DemoModel_DEMO_acc.csv", art / "latest_acc.csv")  # inside: fine
    os.symlink(outside / "secret.txt", art / "leak.txt")  # absolute link outside
    os.symlink("../../outside", art / "leakdir")  # relative dir link outside
    rid = add_run(seeded, "demo-shapes-mcq", "demo-tiny-idefics3", status="running", artifacts_dir=str(art))
    return rid


def test_list_files(clients, run_dir) -> None:
    r = clients.viewer.get(f"/api/evals/runs/{run_dir}/artifacts")
    assert r.status_code == 200, r.text
    names = [f["name"] for f in r.json()["data"]]
    assert names == [
        "DemoModel/DemoModel_DEMO_acc.csv",
        "DemoModel/preds.xlsx",
        "latest_acc.csv",
        "page.html",
        "worker_stderr.log",
    ]
    log = next(f for f in r.json()["data"] if f["name"] == "worker_stderr.log")
    assert log["size"] == 14 and log["modified"]
    assert r.json()["count"] == 5 and r.json()["truncated"] is False


def test_read_files(clients, run_dir) -> None:
    base = f"/api/evals/runs/{run_dir}/artifacts"
    r = clients.viewer.get(f"{base}/worker_stderr.log")
    assert r.status_code == 200 and r.text == "line 1\nline 2\n" and r.headers["content-type"].startswith("text/plain")
    assert clients.viewer.get(f"{base}/latest_acc.csv").text == "split,Overall\nnone,0.5\n"
    assert clients.viewer.get(f"{base}/DemoModel/DemoModel_DEMO_acc.csv").status_code == 200
    x = clients.viewer.get(f"{base}/DemoModel/preds.xlsx")
    assert x.headers["content-type"] == "application/octet-stream" and "attachment" in x.headers["content-disposition"]
    html = clients.viewer.get(f"{base}/page.html")  # never rendered as HTML on Airflow's origin
    assert (
        html.headers["content-type"] == "application/octet-stream"
        and "sandbox" in html.headers["content-security-policy"]
    )
    assert clients.viewer.get(f"{base}/missing.log").status_code == 404


@pytest.mark.parametrize(
    "attempt",
    [
        "leak.txt",
        "leakdir/secret.txt",
        "..%2Fsecret.txt",
        "%2e%2e/secret.txt",
        "%2e%2e%2fsecret.txt",
        "DemoModel/..%2F..%2Fsecret.txt",
        "DemoModel/%2E%2E/%2E%2E/secret.txt",
        "%2Fetc%2Fpasswd",
        "%2F%2Fetc/passwd",
        "..%5Csecret.txt",
        "%252e%252e%252fsecret.txt",
        "..%2F..%2F..%2Foutside%2Fsecret.txt",
        "worker_stderr.log%00.txt",
        "DemoModel",
        "%2e",
    ],
)
def test_traversal_attempts_are_refused(clients, run_dir, attempt: str) -> None:
    r = clients.admin.get(f"/api/evals/runs/{run_dir}/artifacts/{attempt}")
    assert r.status_code in (404, 422), (attempt, r.status_code)
    assert SECRET not in r.text and "root:" not in r.text
    assert isinstance(r.json()["detail"], str | list)


def test_raw_dotdot_paths_are_refused(clients, run_dir) -> None:
    """Paths sent verbatim (clients usually normalise `..` away before sending)."""
    import asyncio

    async def raw(path: str) -> tuple[int, bytes]:
        sent: list[dict] = []
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 1),
            "headers": [(b"authorization", f"Bearer {clients.tokens['admin']}".encode()), (b"host", b"testserver")],
        }

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(msg: dict) -> None:
            sent.append(msg)

        await clients.anon.app(scope, receive, send)
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

    for path in (
        f"/api/evals/runs/{run_dir}/artifacts/../../../secret.txt",
        f"/api/evals/runs/{run_dir}/artifacts/DemoModel/../../secret.txt",
        f"/api/evals/runs/{run_dir}/artifacts//etc/passwd",
    ):
        code, body = asyncio.run(raw(path))
        assert code in (404, 422), (path, code)
        assert SECRET.encode() not in body and b"root:" not in body


def test_run_without_files_lists_nothing(clients, seeded) -> None:
    rid = add_run(seeded, "demo-shapes-mcq", "demo-tiny-idefics3", status="queued")
    assert clients.viewer.get(f"/api/evals/runs/{rid}/artifacts").json() == {"data": [], "count": 0, "truncated": False}
    assert clients.viewer.get(f"/api/evals/runs/{rid}/artifacts/worker_stderr.log").status_code == 404
    assert clients.viewer.get("/api/evals/runs/987654/artifacts").status_code == 404
