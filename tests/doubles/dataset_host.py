"""A local stand-in for VLMEvalKit's dataset host (or a mirror of it): plain HTTP GET on 127.0.0.1.

Serves in-memory files by URL path; a file can be made to fail (`500`), arrive corrupt (`corrupt`: bytes
flipped, same length) or truncated (`truncate`: the connection closes halfway through a declared length),
and the whole server can be throttled. It counts GETs per path, so tests can assert "downloaded once".
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 * 1024


@dataclass
class HostState:
    files: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, str] = field(default_factory=dict)  # path -> 500 | corrupt | truncate
    rate_bps: float | None = None  # throttle, bytes per second
    gets: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _send_body(handler: BaseHTTPRequestHandler, body: bytes, rate_bps: float | None) -> None:
    t0 = time.monotonic()
    for i in range(0, len(body), CHUNK):
        handler.wfile.write(body[i : i + CHUNK])
        if rate_bps:
            ahead = (i + CHUNK) / rate_bps - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)


def _handler(state: HostState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            with state.lock:
                state.gets[path] += 1
            body, fault = state.files.get(path), state.faults.get(path)
            if body is None or fault == "500":
                code = 404 if body is None else 500
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if fault == "corrupt":
                body = bytes(b ^ 0x5A for b in body[:64]) + body[64:]
            self.send_response(200)
            self.send_header("Content-Type", "text/tab-separated-values")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if fault == "truncate":
                _send_body(self, body[: len(body) // 2], state.rate_bps)
                self.close_connection = True
                return
            _send_body(self, body, state.rate_bps)

    return Handler


@dataclass
class DatasetHost:
    server: ThreadingHTTPServer
    state: HostState

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def add(self, path: str, body: bytes, fault: str | None = None) -> str:
        self.state.files[path] = body
        if fault:
            self.state.faults[path] = fault
        else:
            self.state.faults.pop(path, None)
        return self.url(path)


@contextmanager
def dataset_host(rate_bps: float | None = None) -> Iterator[DatasetHost]:
    """A running host on a free port of 127.0.0.1, stopped on exit."""
    state = HostState(rate_bps=rate_bps)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield DatasetHost(server, state)
    finally:
        server.shutdown()
        server.server_close()
