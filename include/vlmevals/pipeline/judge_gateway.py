"""The judge gateway: every judge request of a scoring step goes through it, on loopback, for that step only.

VLMEvalKit is pointed at it with `--judge-base-url http://127.0.0.1:PORT/v1`; it forwards each
`POST /v1/chat/completions` to the configured judge (EVALS_JUDGE_BASE_URL, with EVALS_JUDGE_KEY, which VLMEvalKit
then never sees), and on the way:
- answers a request it has answered before from the judge cache in our database (vlmevals.runs.judge_cache);
- holds the step to its share of the judge endpoint (a semaphore of the share `claim_judge` granted);
- retries 429, 5xx, timeouts and refused connections with exponential backoff, waiting what `Retry-After` says
  when the judge says it (VLMEvalKit is run with `--judge-retry 1`, so retries are not multiplied and none are
  blind);
- counts requests, cache answers, tokens (the answers' `usage`), failures by kind and latency (JudgeUsage).

Why the standard library's ThreadingHTTPServer in a thread, and a sync httpx client: the step is synchronous
code in an Airflow worker, the traffic is one VLMEvalKit process's few parallel requests (its judge nproc), and
a thread per request needs no event loop inside the task process, nothing to install, and stops cleanly with
`shutdown()`. An ASGI server (uvicorn) would add a loop thread and a startup handshake for no gain at this scale.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from sqlalchemy import Engine

from vlmevals.catalogue.prices import judge_prices
from vlmevals.core.settings import Settings
from vlmevals.db.engine import session_scope
from vlmevals.runs import judge_cache
from vlmevals.runs.judge_usage import JudgeUsage

log = logging.getLogger(__name__)

PROBE_TEXT = "hello"  # VLMEvalKit's BaseAPI.working() probe
MAX_RETRY_AFTER_S = 120.0


def retry_after_s(header: str | None) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date), capped; None when absent or unreadable."""
    if not header:
        return None
    try:
        return min(max(float(header), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - time.time(), 0.0), MAX_RETRY_AFTER_S)


def _is_probe(body: dict[str, Any]) -> bool:
    msgs = body.get("messages") or []
    if len(msgs) != 1:
        return False
    content = msgs[0].get("content") if isinstance(msgs[0], dict) else None
    if isinstance(content, list):
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return isinstance(content, str) and content.strip() == PROBE_TEXT


def _content_ok(payload: Any) -> bool:
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return False
    return isinstance(content, str) and content != ""


class _Failure(Exception):
    """One failed call to the judge: its kind, whether to retry, and what to hand VLMEvalKit if it stays failed."""

    def __init__(self, kind: str, message: str, status: int = 502, wait_s: float | None = None, retry: bool = True):
        super().__init__(message)
        self.kind, self.status, self.wait_s, self.retry = kind, status, wait_s, retry


class JudgeGateway:
    """One scoring step's gateway; use as a context manager (`.base_url` while inside)."""

    def __init__(self, engine: Engine, settings: Settings, *, upstream: str, max_concurrency: int) -> None:
        self.engine, self.settings = engine, settings
        self.upstream = upstream.rstrip("/")
        self.cap = max_concurrency
        self.usage = JudgeUsage()
        self._slots = threading.BoundedSemaphore(max_concurrency)
        headers = {"Authorization": f"Bearer {settings.judge_key}"} if settings.judge_key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=settings.judge_timeout_s,
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
        )
        self._server = _Server(("127.0.0.1", 0), self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> JudgeGateway:
        self._thread.start()
        log.info("judge gateway %s -> %s (cache %s, %s at a time)", self.base_url, self.upstream,
                 "on" if self.settings.judge_cache else "off", self.cap)  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        self._client.close()

    def block(self) -> dict[str, Any]:
        return self.usage.block(
            judge_prices(self.settings), cache_on=self.settings.judge_cache, endpoint=self.upstream, cap=self.cap
        )

    # -- one request ---------------------------------------------------------------------------------------------

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) for one chat completion request from VLMEvalKit."""
        started = time.perf_counter()
        self.usage.add(requests=1)
        key = judge_cache.request_key(body) if self.settings.judge_cache else None
        if key is not None:
            with session_scope(self.engine) as s:
                hit = judge_cache.lookup(s, key)
            if hit is not None:
                self.usage.add(cached=1)
                self.usage.models.add(str(hit.get("model") or body.get("model") or ""))
                self.usage.overhead_ms.append((time.perf_counter() - started) * 1000)
                return 200, hit
        with self._slots:
            status, payload, upstream_s = self._forward(body)
        if status == 200:
            model = str(payload.get("model") or body.get("model") or "")
            self.usage.answer(model, payload.get("usage"), upstream_s * 1000)
            if key is not None:
                with session_scope(self.engine) as s:
                    judge_cache.store(s, key, model, payload)
        elif _is_probe(body):
            self.usage.probe_failed = True
        self.usage.overhead_ms.append((time.perf_counter() - started - upstream_s) * 1000)
        return status, payload

    def _forward(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        """The judge's answer, retried; (status, body, seconds spent waiting for the judge, sleeps excluded)."""
        upstream_s = 0.0
        tries = self.settings.judge_retries + 1
        for attempt in range(tries):
            t0 = time.perf_counter()
            try:
                payload = self._call(body)
                upstream_s += time.perf_counter() - t0
                return 200, payload, upstream_s
            except _Failure as failed:
                upstream_s += time.perf_counter() - t0
                self.usage.failure(failed.kind, str(failed))
                if not failed.retry or attempt == tries - 1:
                    self.usage.add(failed=1)
                    log.warning("judge request failed for good after %s call(s): %s", attempt + 1, failed)
                    return failed.status, {"error": {"message": str(failed), "type": failed.kind}}, upstream_s
                wait = failed.wait_s
                if wait is None:
                    wait = self.settings.judge_backoff_s * 2**attempt * (0.5 + random.random() / 2)
                self.usage.add(retries=1)
                time.sleep(wait)
        raise AssertionError("unreachable")

    def _call(self, body: dict[str, Any]) -> dict[str, Any]:
        self.usage.add(upstream_calls=1)
        try:
            r = self._client.post(f"{self.upstream}/chat/completions", json=body)
        except httpx.TimeoutException as err:
            raise _Failure("timeout", f"judge {self.upstream} timed out: {err}", 504) from err
        except httpx.TransportError as err:
            raise _Failure("connect", f"judge {self.upstream} unreachable: {type(err).__name__}: {err}") from err
        if r.status_code == 429:
            wait = retry_after_s(r.headers.get("retry-after"))
            raise _Failure("http_429", f"judge rate-limited (429): {r.text[:300]}", 429, wait)
        if r.status_code >= 500:
            raise _Failure("http_5xx", f"judge answered {r.status_code}: {r.text[:300]}", r.status_code)
        if r.status_code != 200:  # a request the judge refuses stays refused: no retry
            raise _Failure("http_4xx", f"judge refused the request ({r.status_code}): {r.text[:300]}",
                           r.status_code, retry=False)  # fmt: skip
        try:
            payload = r.json()
        except ValueError as err:
            raise _Failure("malformed", f"judge answered 200 without JSON: {r.text[:200]!r}") from err
        if not _content_ok(payload):
            raise _Failure("empty", "judge answered 200 without any content")
        return dict(payload)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("judge gateway: " + format, *args)

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/health":
            self._send(200, {"status": "ok"})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._send(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        if not self.path.split("?", 1)[0].rstrip("/").endswith("/chat/completions") or not isinstance(body, dict):
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            status, payload = self.server.gateway.answer(body)
        except Exception as err:  # a bug or our database down: VLMEvalKit sees a failed call, the log says why
            log.exception("judge gateway failed on a request")
            status, payload = 502, {"error": {"message": f"judge gateway: {err}", "type": "gateway_error"}}
            self.server.gateway.usage.failure("gateway", str(err))
        self._send(status, payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, addr: tuple[str, int], gateway: JudgeGateway) -> None:
        self.gateway = gateway
        super().__init__(addr, _Handler)
