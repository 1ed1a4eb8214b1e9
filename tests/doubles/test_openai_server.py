"""Tests for the OpenAI-compatible test double: protocol shape, policies, failure injection, and a real
VLMEvalKit run against it (the reason it exists: VLMEvalKit's LMDeployAPI must talk to it unchanged)."""

from __future__ import annotations

import base64
import csv
import http.client
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.doubles.openai_server import ServerHandle, serve

ROOT = Path(__file__).resolve().parents[2]  # `python -m tests.doubles.openai_server` runs from the repo root
MCQ_PROMPT = (
    "Question: {q}\nOptions:\nA. red\nB. green\nC. blue\nD. yellow\n"
    "Please select the correct answer from the options above. \n"
)
COLORS = ["red", "green", "blue", "yellow", "black"]


def _png_b64(color: str) -> str:
    """A 32x32 PNG as base64, the way LMUData TSVs embed images."""
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def write_mcq_tsv(lmu_dir: Path, name: str = "TinyMCQ") -> Path:
    """Write a 5-question custom MCQ TSV; the correct letter rotates so a fixed answer cannot score 1.0."""
    lmu_dir.mkdir(parents=True, exist_ok=True)
    path = lmu_dir / f"{name}.tsv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t")
        writer.writerow(["index", "image", "question", "A", "B", "C", "D", "answer", "category"])
        for i, color in enumerate(COLORS):
            opts = [c for c in COLORS if c != color][:3]
            letter = "ABCD"[i % 4]
            opts.insert(i % 4, color)
            q = f"Q{i}: What colour fills this image?"
            writer.writerow([i, _png_b64(color), q, *opts, letter, "colour"])
    return path


def _chat(client: httpx.Client, text: str, image: bool = False) -> httpx.Response:
    content: list[dict[str, object]] = [{"type": "text", "text": text}]
    if image:
        url = f"data:image/jpeg;base64,{_png_b64('red')}"
        content.insert(0, {"type": "image_url", "image_url": {"url": url}})
    payload = {"model": "m1", "messages": [{"role": "user", "content": content}], "n": 1, "max_tokens": 16}
    return client.post("/chat/completions", json=payload, headers={"Authorization": "Bearer sk-test"})


def _answer(client: httpx.Client, text: str) -> str:
    return str(_chat(client, text).json()["choices"][0]["message"]["content"])


@pytest.fixture
def server() -> Iterator[ServerHandle]:
    handle = serve(mode="fixed", text="A")
    yield handle
    handle.stop()


@pytest.fixture
def client(server: ServerHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        yield c


def test_models_list(server: ServerHandle, client: httpx.Client) -> None:
    assert server.base_url.endswith("/v1") and server.port > 0
    body = client.get("/models").json()
    assert body["object"] == "list"
    assert body["data"][0]["id"] == "test-model" and body["data"][0]["object"] == "model"


def test_chat_completion_shape(server: ServerHandle, client: httpx.Client) -> None:
    r = _chat(client, "hello", image=True)
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "m1"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "A"}
    assert body["choices"][0]["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    stats = httpx.get(f"{server.url}/admin/stats").json()
    assert stats["chat_completions"] == 1 and stats["images"] == 1 and stats["answered"] == 1


def test_bad_requests_rejected(client: httpx.Client) -> None:
    assert client.post("/chat/completions", json={"model": "m"}).status_code == 400
    bad_img = {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}
    payload = {"model": "m", "messages": [{"role": "user", "content": [bad_img]}]}
    assert client.post("/chat/completions", json=payload).status_code == 400
    assert client.get("/nope").status_code == 404


def test_policy_switch_oracle_and_wrong(tmp_path: Path, server: ServerHandle, client: httpx.Client) -> None:
    tsv = write_mcq_tsv(tmp_path)
    admin = httpx.Client(base_url=server.url, timeout=10)
    r = admin.post("/admin/policy", json={"mode": "oracle", "tsv": str(tsv)})
    assert r.status_code == 200 and r.json()["mode"] == "oracle"
    # Q1's correct letter is B (answers rotate); the matching is on the question text found in the prompt
    assert _answer(client, MCQ_PROMPT.format(q="Q1: What colour fills this image?")) == "B"
    admin.post("/admin/policy", json={"mode": "wrong"})
    wrong = _chat(client, MCQ_PROMPT.format(q="Q1: What colour fills this image?")).json()
    assert wrong["choices"][0]["message"]["content"] in {"A", "C", "D"}
    # explicit mapping wins without a TSV; unknown questions fall back to `text` and are counted
    admin.post("/admin/policy", json={"mode": "oracle", "tsv": None, "answers": {"2+2?": "4"}, "text": "?"})
    assert _chat(client, "Question: 2+2?").json()["choices"][0]["message"]["content"] == "4"
    assert _chat(client, "Question: unknown").json()["choices"][0]["message"]["content"] == "?"
    assert admin.get("/admin/stats").json()["unmatched"] == 1
    assert admin.post("/admin/policy", json={"mode": "bogus"}).status_code == 422
    assert admin.post("/admin/policy", json={"nope": 1}).status_code == 422
    assert server.policy().mode == "oracle"  # a rejected update changes nothing
    admin.close()


def test_failure_injection(server: ServerHandle, client: httpx.Client) -> None:
    server.set_policy(fail_every=2, fail_mode="500")
    codes = [_chat(client, "hi").status_code for _ in range(4)]
    assert codes == [200, 500, 200, 500]
    server.set_policy(fail_every=1, fail_mode="malformed")
    r = _chat(client, "hi")
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    server.set_policy(fail_every=1, fail_mode="empty")
    assert _chat(client, "hi").json()["choices"][0]["message"]["content"] == ""
    server.set_policy(fail_every=0, fail_rate=1.0, fail_mode="500")
    assert _chat(client, "hi").status_code == 500
    stats = server.stats()
    assert stats["failed"] == 5 and stats["answered"] == 2
    assert stats["failed_by_mode"] == {"500": 3, "malformed": 1, "empty": 1, "429": 0}
    server.reset_stats()
    assert server.stats()["chat_completions"] == 0


def test_delay(server: ServerHandle, client: httpx.Client) -> None:
    server.set_policy(delay_s=0.3)
    t0 = time.perf_counter()
    assert _chat(client, "hi").status_code == 200
    assert time.perf_counter() - t0 >= 0.3


def test_request_phase_and_in_flight_counted(server: ServerHandle, client: httpx.Client) -> None:
    before = time.time()
    server.set_policy(fail_every=2, fail_mode="500")
    assert [_chat(client, "hi").status_code for _ in range(3)] == [200, 500, 200]
    stats = server.stats()
    assert stats["in_flight"] == 0 and stats["max_in_flight"] == 1  # a failed request leaves the count too
    assert before <= stats["first_chat_at"] <= stats["last_chat_end_at"] <= time.time()
    server.reset_stats()
    assert server.stats()["first_chat_at"] is None and server.stats()["in_flight"] == 0


def _post_chat(port: int, codes: list[int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        codes.append(conn.getresponse().status)
    except OSError:
        codes.append(-1)
    finally:
        conn.close()


def test_a_burst_of_clients_is_served_at_once(server: ServerHandle) -> None:
    """64 clients connecting together are all in flight together: the listen backlog holds them (with
    socketserver's 5, dozens were reset and the rest waited for SYN retransmits, serialising a concurrency test)."""
    server.set_policy(delay_s=1.0)
    codes: list[int] = []
    threads = [threading.Thread(target=_post_chat, args=(server.port, codes)) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 64
    assert server.stats()["max_in_flight"] == 64


def test_loopback_only() -> None:
    with pytest.raises(ValueError):
        serve(host="0.0.0.0")


def test_cli_process(tmp_path: Path) -> None:
    tsv = write_mcq_tsv(tmp_path)
    cmd = [sys.executable, "-m", "tests.doubles.openai_server", "--port", "0", "--policy", "oracle"]
    proc = subprocess.Popen([*cmd, "--tsv", str(tsv)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("READY http://127.0.0.1:")
        base_url = line.split()[1]
        with httpx.Client(base_url=base_url, timeout=10) as c:
            answer = _chat(c, MCQ_PROMPT.format(q="Q3: What colour fills this image?")).json()
            assert answer["choices"][0]["message"]["content"] == "D"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def _run_vlmeval(base_url: str, lmu: Path, work_dir: Path) -> subprocess.CompletedProcess[str]:
    """The exact CLI the service uses for OpenAI-compatible endpoints (builds vlmeval's LMDeployAPI)."""
    cmd = [sys.executable, "-m", "vlmeval", "--model", "test-model", "--data", "TinyMCQ"]
    cmd += ["--base-url", base_url, "--key", "sk-test", "--judge", "exact_matching"]
    cmd += ["--work-dir", str(work_dir), "--retry", "1", "--api-nproc", "2"]
    env = {**os.environ, "LMUData": str(lmu)}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=work_dir.parent)


def _overall(work_dir: Path) -> float:
    acc = work_dir / "test-model" / "test-model_TinyMCQ_acc.csv"
    with acc.open() as fh:
        rows = list(csv.DictReader(fh))
    return float(rows[0]["Overall"])


@pytest.mark.e2e
def test_vlmevalkit_against_server(tmp_path: Path) -> None:
    lmu = tmp_path / "LMUData"
    tsv = write_mcq_tsv(lmu)
    with serve(mode="oracle", tsv=str(tsv)) as srv:
        res = _run_vlmeval(srv.base_url, lmu, tmp_path / "w_oracle")
        assert res.returncode == 0, res.stderr[-3000:]
        out = tmp_path / "w_oracle" / "test-model"
        for name in ("test-model_TinyMCQ.xlsx", "test-model_TinyMCQ_acc.csv", "status.json"):
            assert (out / name).exists(), sorted(p.name for p in out.iterdir())
        assert _overall(tmp_path / "w_oracle") == 1.0
        stats = srv.stats()
        assert stats["chat_completions"] == 5 and stats["images"] == 5 and stats["unmatched"] == 0
        assert stats["last_model"] == "test-model"

        srv.set_policy(mode="wrong")
        res = _run_vlmeval(srv.base_url, lmu, tmp_path / "w_wrong")
        assert res.returncode == 0, res.stderr[-3000:]
        assert _overall(tmp_path / "w_wrong") == 0.0
