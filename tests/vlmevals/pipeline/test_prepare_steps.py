"""The queue step prepares data and weights before any GPU: a dataset from a local host, Hub weights from a
fake Hub serving the demo model; inference then runs with the Hub silent; a judge-needing task without a judge
and a failing download are refused at queue; a new Hub commit makes the nightly plan say "weights changed"."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from vlmevals.core.errors import InvalidRequestError
from vlmevals.core.settings import get_settings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import Enrolment, Model, Task
from vlmevals.devtools.demo.benchmark import render_benchmark, write_benchmark
from vlmevals.devtools.demo.model import DEMO_MODEL_SPEC
from vlmevals.nightly import planning
from vlmevals.pipeline import prepare, steps
from vlmevals.runs import lifecycle as runs
from vlmevals.vlmevalkit import hub

from tests.doubles.dataset_host import DatasetHost, dataset_host
from tests.doubles.fake_hub import FakeHub, fake_hub

REPO = "demo-org/tiny-idefics3"
BODY = render_benchmark("DEMO_SHAPES_MCQ")
MD5 = hashlib.md5(BODY).hexdigest()


@pytest.fixture()
def servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DatasetHost, FakeHub]]:
    with dataset_host() as host, fake_hub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.setenv("EVALS_DOWNLOAD_TRIES", "1")
        monkeypatch.delenv("EVALS_OFFLINE", raising=False)
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        hub._online_cache.clear()
        yield host, fake


def _queue(engine: Any, task: str, model: str) -> int:
    info = steps.queue_step(
        engine,
        {"task": task, "model": model},
        dag_id="eval_run",
        dag_run_id=f"t__{time.time_ns()}",
        run_type="manual",
        user=None,
    )
    return int(info["eval_run_id"])


def _add(engine: Any, data: str, url: str | None, model_path: str, md5: str | None = MD5) -> None:
    spec = {**DEMO_MODEL_SPEC(Path("/x")), "model_path": model_path}
    with session_scope(engine) as s:
        s.add(
            Task(
                name="hubtest",
                display_name="H",
                vlmeval_data=data,
                vlmeval_dataset_class="CustomMCQDataset",
                dataset_url=url,
                dataset_md5=md5 if url else None,
            )
        )
        s.add(Model(name="tiny-hub", display_name="T", vlmeval_model="TinyHub", model_spec=spec, gpus=0))


@pytest.mark.integration
def test_llm_judged_task_is_refused_at_queue_without_a_judge(seeded: Any, servers: Any) -> None:
    with session_scope(seeded) as s:
        s.add(Model(name="served", display_name="S", vlmeval_model="m", endpoint_base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(InvalidRequestError, match=r"scored by an LLM judge.*EVALS_JUDGE_BASE_URL"):
        _queue(seeded, "charxiv-reasoning", "served")
    with session_scope(seeded) as s:
        run = runs.get_run(s, 1)
        assert run.status == "failed" and "EVALS_JUDGE_KEY" in (run.error or "")
        assert run.task.needs_llm_judge is True  # recorded on the task
    assert not (get_settings().lmu_data / "CharXiv_reasoning_val.tsv").exists()


@pytest.mark.integration
def test_failed_download_fails_the_run_at_queue(seeded: Any, servers: tuple[DatasetHost, FakeHub]) -> None:
    host, _ = servers
    url = host.add("/lab/HUB500.tsv", BODY, fault="500")
    _add(seeded, "HUB500", url, REPO)
    with pytest.raises(InvalidRequestError, match="HTTP 500"):
        _queue(seeded, "hubtest", "tiny-hub")
    with session_scope(seeded) as s:
        run = runs.get_run(s, 1)
        assert run.status == "failed" and url in (run.error or "") and run.started_at is None
    assert not list(get_settings().lmu_data.glob("*HUB500*"))


@pytest.mark.e2e
def test_data_and_weights_prepared_before_inference(
    seeded: Any, servers: tuple[DatasetHost, FakeHub], demo_assets: dict[str, Path]
) -> None:
    host, fake = servers
    sha = fake.push_folder(REPO, demo_assets["model"])
    _add(seeded, "HUB_SHAPES_MCQ", host.add("/lab/HUB_SHAPES_MCQ.tsv", BODY), REPO)
    run_id = _queue(seeded, "hubtest", "tiny-hub")
    with session_scope(seeded) as s:
        run = runs.get_run(s, run_id)
        events = [e.message or "" for e in run.events]
        assert run.progress_total == 20 and run.progress_done == 0  # samples, after the download's KiB
    assert any("dataset HUB_SHAPES_MCQ" in e and f"md5 {MD5} verified" in e for e in events), events
    assert any(f"commit {sha}" in e for e in events), events
    assert host.state.gets["/lab/HUB_SHAPES_MCQ.tsv"] == 1

    t0 = time.time()
    steps.inference_step(seeded, run_id, 1)
    assert fake.requests_between(t0, time.time()) == [], "nothing may download while the GPU slot is held"
    steps.scoring_step(seeded, run_id, 1)
    steps.ingest_step(seeded, run_id)
    with session_scope(seeded) as s:
        run = runs.get_run(s, run_id)
        assert run.status == "completed", run.error
        assert run.fingerprint["model"]["weights"] == {"hub": REPO, "revision": "main", "sha": sha}
        assert "snapshots" not in str(run.fingerprint["model"]["kwargs"]), "the repo id, not the local path"
        task_id, model_id = run.task_id, run.model_id
        s.add(Enrolment(task_id=task_id, model_id=model_id))

    def decision() -> planning.Decision:
        with session_scope(seeded) as s:
            return planning.plan(s)[0]

    assert decision().reason == "unchanged"
    fake.push_folder(REPO, demo_assets["model"], extra={"README.md": b"new commit"})
    hub._online_cache.clear()
    d = decision()
    assert d.action == "trigger" and d.detail == f"weights changed since run {run_id}", d.detail


@pytest.mark.integration
@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("index\tquestion\tA\tB\timage", "'answer'"),
        ("index\tquestion\tA\tB\tanswer", "'image (or image_path)'"),
    ],
)
def test_tsv_missing_a_column_fails_at_queue_naming_it(seeded: Any, servers: Any, header: str, missing: str) -> None:
    """A custom TSV in LMUData without `answer` or `image` fails at queue (header read only), before any GPU."""
    lmu = get_settings().lmu_data
    lmu.mkdir(parents=True, exist_ok=True)
    (lmu / "NOCOL_MCQ.tsv").write_text(f"{header}\n0\tWhich?\tx\ty\tA\n")
    with session_scope(seeded) as s:
        s.add(Task(name="nocol", display_name="N", vlmeval_data="NOCOL_MCQ"))
        s.add(Model(name="served", display_name="S", vlmeval_model="m", endpoint_base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(InvalidRequestError, match=rf"has no {re.escape(missing)} column; an MCQ VLMEvalKit dataset"):
        _queue(seeded, "nocol", "served")
    with session_scope(seeded) as s:
        run = runs.get_run(s, 1)
        assert run.status == "failed" and missing in (run.error or "") and run.started_at is None


@pytest.mark.integration
def test_endpoint_down_fails_at_queue_naming_the_url(seeded: Any, servers: Any) -> None:
    """A served model whose server is down (a closed port) fails at queue after its tries, with the URL."""
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    write_benchmark("DEMO_SHAPES_MCQ", get_settings().lmu_data)
    with session_scope(seeded) as s:
        s.add(Model(name="down", display_name="D", vlmeval_model="m", endpoint_base_url=url, gpus=0))
    with pytest.raises(InvalidRequestError, match=rf"endpoint {re.escape(url)} is unreachable.*failed 3 times"):
        _queue(seeded, "demo-shapes-mcq", "down")
    with session_scope(seeded) as s:
        run = runs.get_run(s, 1)
        assert run.status == "failed" and url in (run.error or "") and run.started_at is None


@contextlib.contextmanager
def _hung_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """A server that accepts connections and never answers; yields its base URL and the connections it took."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1", accepted
    finally:
        stop.set()
        thread.join(5)
        for conn in [*accepted, listener]:
            conn.close()


@contextlib.contextmanager
def _answering_server(status: int) -> Iterator[tuple[str, list[str]]]:
    """A server answering every GET with `status`; yields its base URL and the paths asked for."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _served_model(engine: Any, name: str, url: str) -> None:
    write_benchmark("DEMO_SHAPES_MCQ", get_settings().lmu_data)
    with session_scope(engine) as s:
        s.add(Model(name=name, display_name=name, vlmeval_model="m", endpoint_base_url=url, gpus=0))


def test_endpoint_probe_defaults_are_what_the_readme_promises() -> None:
    """README (faults table): 3 tries, a 5 s timeout each; the tests below shorten them, so pin the product's."""
    assert (prepare.ENDPOINT_PROBE_TRIES, prepare.ENDPOINT_PROBE_TIMEOUT_S) == (3, 5.0)
    defaults = {k: p.default for k, p in inspect.signature(prepare.probe_endpoint).parameters.items()}
    assert (defaults["tries"], defaults["timeout_s"]) == (3, 5.0)


@pytest.mark.integration
def test_hung_endpoint_times_out_each_try_and_fails_at_queue(
    seeded: Any, servers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that accepts but never answers: every try ends at the timeout, then the run fails naming the URL."""
    timeout_s = 0.4
    monkeypatch.setattr(prepare, "ENDPOINT_PROBE_TIMEOUT_S", timeout_s)
    monkeypatch.setattr(prepare, "ENDPOINT_PROBE_PAUSE_S", 0.0)
    with _hung_server() as (url, accepted):
        _served_model(seeded, "hung", url)
        t0 = time.monotonic()
        with pytest.raises(InvalidRequestError) as caught:
            _queue(seeded, "demo-shapes-mcq", "hung")
        took = time.monotonic() - t0
        assert len(accepted) == 3, "three tries, each connected"
    message = str(caught.value)
    assert f"endpoint {url} is unreachable: GET {url}/models failed 3 times (ReadTimeout" in message, message
    assert took >= 3 * timeout_s, f"each try waits out its timeout ({took:.2f} s in all)"
    assert took < 3 * timeout_s + 3.0, f"the module's per-try timeout is the one used ({took:.2f} s in all)"
    with session_scope(seeded) as s:
        run = runs.get_run(s, 1)
        assert run.status == "failed" and f"GET {url}/models failed 3 times" in (run.error or "")


@pytest.mark.integration
@pytest.mark.parametrize("status", [404, 500])
def test_any_http_answer_counts_as_up(seeded: Any, servers: Any, status: int) -> None:
    """A server that answers, even with an error status, is up: the run is queued after one GET of /models."""
    with _answering_server(status) as (url, asked):
        _served_model(seeded, f"answers-{status}", url)
        run_id = _queue(seeded, "demo-shapes-mcq", f"answers-{status}")
    assert asked == ["/v1/models"]
    with session_scope(seeded) as s:
        assert runs.get_run(s, run_id).status == "queued"
