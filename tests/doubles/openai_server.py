"""A scriptable OpenAI-compatible chat server: the test double for served models and LLM judges.

Why: VLMEvalKit's `--base-url` path (class LMDeployAPI) and our judge settings talk to real vLLM/LMDeploy
servers. Tests need the same wire protocol with answers we control (always right, always wrong, slow,
flaky) so inference, scoring and failure counting can be checked without a GPU.

Standard library only (ThreadingHTTPServer): starts in milliseconds, needs no event loop, and a blocking
`delay_s` sleep only holds its own request thread. Binds loopback only.

Endpoints: `GET /v1/models`, `POST /v1/chat/completions` (non-streaming), `GET /health`,
`GET|POST /admin/policy` (read / merge-update the answer policy), `GET /admin/stats` (counters, requests in flight
and their peak, the first request's start and the last one's end), `POST /admin/reset`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.doubles.openai_answers import (
    FAIL_MODES,
    LOOPBACK_HOSTS,
    MODES,
    Policy,
    State,
    choose_answer,
    completion,
    prompt_text,
)


class _Handler(BaseHTTPRequestHandler):
    """Routes requests; JSON in, JSON out, always with a Content-Length so keep-alive clients behave."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging unless asked (pytest output stays readable)."""
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(
        self,
        status: int,
        body: bytes | dict[str, Any],
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(
        self, status: int, message: str, kind: str = "invalid_request_error", headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, {"error": {"message": message, "type": kind, "code": status}}, headers=headers)

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw or b"{}")

    def _count(self, key: str, inc: int = 1) -> None:
        with self.server.state.lock:
            self.server.state.stats[key] += inc

    def do_GET(self) -> None:
        """Model list, health, policy and stats."""
        state = self.server.state
        self._count("requests")
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/v1/models":
            self._count("models")
            name = state.policy.model_name
            created = int(self.server.started)
            model = {"id": name, "object": "model", "created": created, "owned_by": "vlmevals-testing"}
            self._send(200, {"object": "list", "data": [model]})
        elif path == "/health":
            self._send(200, b"", "text/plain")
        elif path == "/admin/policy":
            self._send(200, dataclasses.asdict(state.policy))
        elif path == "/admin/stats":
            with state.lock:
                self._send(200, json.loads(json.dumps(state.stats)))
        else:
            self._error(404, f"no route {self.path}")

    def do_POST(self) -> None:
        """Chat completions and the admin writes."""
        state = self.server.state
        self._count("requests")
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            body = self._read_json()
        except (ValueError, UnicodeDecodeError):
            self._count("bad_requests")
            self._error(400, "body is not valid JSON")
            return
        if path == "/admin/policy":
            try:
                policy = state.update(body)
            except (TypeError, ValueError) as err:
                self._error(422, str(err))
                return
            self._send(200, dataclasses.asdict(policy))
        elif path == "/admin/reset":
            with state.lock:
                state.reset_stats()
                state.rng = random.Random(state.policy.seed)
            self._send(200, {"ok": True})
        elif path == "/v1/chat/completions":
            self._chat(body)
        else:
            self._error(404, f"no route {self.path}")

    def _chat(self, body: Any) -> None:
        state = self.server.state
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages:
            self._count("bad_requests")
            self._error(400, "'messages' must be a non-empty list")
            return
        if body.get("stream"):
            self._count("bad_requests")
            self._error(400, "streaming is not supported by the test server")
            return
        try:
            prompt, images = prompt_text(messages)
        except (AttributeError, ValueError) as err:
            self._count("bad_requests")
            self._error(400, str(err))
            return
        policy, fail = state.begin_chat(prompt, images, body.get("model"))
        try:
            self._answer(policy, fail, prompt, body.get("model"))
        finally:
            state.end_chat()

    def _answer(self, policy: Policy, fail: bool, prompt: str, model: str | None) -> None:
        if policy.delay_s:
            time.sleep(policy.delay_s)
        if fail and policy.fail_mode == "500":
            self._error(500, "injected failure", "server_error")
            return
        if fail and policy.fail_mode == "429":
            retry_after = {"Retry-After": f"{policy.retry_after_s:g}"}
            self._error(429, "rate limited (injected)", "rate_limit_error", headers=retry_after)
            return
        if fail and policy.fail_mode == "malformed":
            self._send(200, b'{"choices": [{"message": ', "application/json")
            return
        answer, matched = ("", True) if fail else choose_answer(self.server.state, policy, prompt)
        body = completion(answer, prompt, model or policy.model_name)
        self.server.state.finish_chat(answer, matched, fail, body["usage"])
        self._send(200, body)


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer carrying the shared state; daemon threads so a hung client never blocks exit.

    The listen backlog is a real server's (uvicorn, i.e. vLLM, uses 2048), not socketserver's 5: with 5, a burst
    of 16 connects (VLMEvalKit at `--api-nproc 16`) left half of them waiting 1 s for a SYN retransmit, and 64
    had 41 reset, so every concurrency figure measured against this double was the backlog's, not the client's.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 2048

    def __init__(self, addr: tuple[str, int], state: State, verbose: bool = False) -> None:
        self.state = state
        self.verbose = verbose
        self.started = time.time()
        super().__init__(addr, _Handler)


class ServerHandle:
    """A running server: `.base_url` (ends in /v1) for clients, `.policy()`/`.set_policy()`/`.stats()`
    for the test in the same process, `.stop()` (or use it as a context manager)."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        self.host, self.port = str(host), int(port)
        self.url = f"http://{self.host}:{self.port}"
        self.base_url = f"{self.url}/v1"

    def set_policy(self, **changes: Any) -> Policy:
        """Change answers between runs without restarting (same as `POST /admin/policy`)."""
        return self._server.state.update(changes)

    def policy(self) -> Policy:
        """The policy now in force."""
        return self._server.state.policy

    def stats(self) -> dict[str, Any]:
        """A copy of the counters (same as `GET /admin/stats`)."""
        with self._server.state.lock:
            copy: dict[str, Any] = json.loads(json.dumps(self._server.state.stats))
        return copy

    def reset_stats(self) -> None:
        """Zero the counters."""
        with self._server.state.lock:
            self._server.state.reset_stats()

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(host: str = "127.0.0.1", port: int = 0, verbose: bool = False, **policy: Any) -> ServerHandle:
    """Start the server in a background thread; `port=0` picks a free port (read it from `.port`)."""
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"the test server binds loopback only, not {host!r}")
    pol = Policy(**policy)
    pol.validate()
    server = _Server(("127.0.0.1", port), State(pol), verbose=verbose)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="openai-test-server", daemon=True
    )
    thread.start()
    return ServerHandle(server, thread)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tests.doubles.openai_server", description="OpenAI-compatible test server."
    )
    p.add_argument("--host", default="127.0.0.1", choices=sorted(LOOPBACK_HOSTS))
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on the READY line)")
    p.add_argument("--policy", dest="mode", default="fixed", choices=MODES)
    p.add_argument("--text", default="A", help="answer for `fixed` (and the oracle's fallback)")
    p.add_argument("--tsv", default=None, help="LMUData TSV the oracle reads (question, answer columns)")
    p.add_argument("--answers", default=None, help="JSON object question->answer, or a path to one")
    p.add_argument("--delay-s", type=float, default=0.0)
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--fail-every", type=int, default=0)
    p.add_argument("--fail-mode", default="500", choices=FAIL_MODES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model-name", default="test-model", help="id listed by GET /v1/models")
    p.add_argument("--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run as its own process; prints `READY <base_url>` once listening so a parent can wait for it."""
    args = _parse_args(argv)
    answers: dict[str, str] = {}
    if args.answers:
        raw = Path(args.answers).read_text() if Path(args.answers).is_file() else args.answers
        answers = {str(k): str(v) for k, v in json.loads(raw).items()}
    handle = serve(
        host=args.host,
        port=args.port,
        verbose=args.verbose,
        mode=args.mode,
        text=args.text,
        tsv=args.tsv,
        answers=answers,
        delay_s=args.delay_s,
        fail_rate=args.fail_rate,
        fail_every=args.fail_every,
        fail_mode=args.fail_mode,
        seed=args.seed,
        model_name=args.model_name,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"READY {handle.base_url}", flush=True)
    stop.wait()
    handle.stop()


if __name__ == "__main__":
    main()
