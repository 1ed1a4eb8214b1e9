"""A small fake Hugging Face Hub on 127.0.0.1 that speaks the endpoints `huggingface_hub.snapshot_download`
and `transformers.from_pretrained` use: `GET /api/models/{repo}/revision/{rev}` (the commit and its file
list), `GET /api/models/{repo}/tree/{rev}/{folder}`, `HEAD`/`GET /{repo}/resolve/{rev}/{file}`
(X-Repo-Commit, ETag, Content-Length, the body; 404 with X-Error-Code for a missing file or revision).
Point `HF_ENDPOINT` at it.

Repos hold commits; `commit()` adds one and moves `main`, like a push. Every request is logged with its time,
so a test can assert that nothing was asked for during inference; downloads can be throttled.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from tests.doubles.dataset_host import _send_body


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> files
    refs: dict[str, str] = field(default_factory=dict)  # branch/tag -> sha


@dataclass
class HubState:
    repos: dict[str, Repo] = field(default_factory=dict)
    rate_bps: float | None = None
    requests: list[tuple[float, str, str]] = field(default_factory=list)  # (time, method, path)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def resolve(self, repo: str, rev: str) -> tuple[str, dict[str, bytes]] | None:
        r = self.repos.get(repo)
        if r is None:
            return None
        sha = r.refs.get(rev, rev)
        return (sha, r.commits[sha]) if sha in r.commits else None


class _HubHandler(BaseHTTPRequestHandler):
    state: HubState  # set per server by _handler
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def _reply(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            _send_body(self, body, self.state.rate_bps)

    def _route(self) -> None:
        path = unquote(self.path.split("?", 1)[0])
        with self.state.lock:
            self.state.requests.append((time.time(), self.command, path))
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "revision":
            return self._info("/".join(parts[2:4]), "/".join(parts[5:]))
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
            return self._tree("/".join(parts[2:4]), parts[5], "/".join(parts[6:]))
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._file("/".join(parts[:2]), parts[3], "/".join(parts[4:]))
        self._reply(404, b'{"error": "not found"}', {"X-Error-Code": "RepoNotFound"})

    def _info(self, repo: str, rev: str) -> None:
        got = self.state.resolve(repo, rev)
        if got is None:
            code = "RepoNotFound" if repo not in self.state.repos else "RevisionNotFound"
            return self._reply(404, b'{"error": "not found"}', {"X-Error-Code": code})
        sha, files = got
        info = {
            "id": repo,
            "modelId": repo,
            "sha": sha,
            "private": False,
            "siblings": [{"rfilename": name} for name in sorted(files)],
        }
        self._reply(200, json.dumps(info).encode(), {"Content-Type": "application/json"})

    def _tree(self, repo: str, rev: str, folder: str) -> None:
        got = self.state.resolve(repo, rev)
        if got is None:
            return self._reply(404, b"{}", {"X-Error-Code": "RevisionNotFound"})
        prefix = f"{folder.rstrip('/')}/" if folder else ""
        entries = [
            {"type": "file", "path": n, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
            for n, b in sorted(got[1].items())
            if n.startswith(prefix) and "/" not in n[len(prefix) :]
        ]
        if folder and not entries:
            return self._reply(404, b"{}", {"X-Error-Code": "EntryNotFound"})
        self._reply(200, json.dumps(entries).encode(), {"Content-Type": "application/json"})

    def _file(self, repo: str, rev: str, name: str) -> None:
        got = self.state.resolve(repo, rev)
        if got is None or name not in got[1]:
            code = "EntryNotFound" if got is not None else "RevisionNotFound"
            return self._reply(404, b"", {"X-Error-Code": code, **({"X-Repo-Commit": got[0]} if got else {})})
        sha, body = got[0], got[1][name]
        headers = {"X-Repo-Commit": sha, "ETag": f'"{hashlib.sha256(body).hexdigest()}"'}
        start = self.headers.get("Range", "").removeprefix("bytes=").split("-")[0]
        if start.isdigit() and int(start) > 0:
            self._reply(206, body[int(start) :], headers)
        else:
            self._reply(200, body, headers)

    do_GET = do_HEAD = _route


def _handler(state: HubState) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_HubHandler,), {"state": state})


@dataclass
class FakeHub:
    server: ThreadingHTTPServer
    state: HubState

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def commit(self, repo: str, files: dict[str, bytes], branch: str = "main") -> str:
        """Push a commit with these files to `branch`; its sha."""
        r = self.state.repos.setdefault(repo, Repo())
        digest = hashlib.sha1(repr((repo, len(r.commits), sorted(files))).encode())
        for name in sorted(files):
            digest.update(files[name])
        sha = digest.hexdigest()
        r.commits[sha], r.refs[branch] = dict(files), sha
        return sha

    def push_folder(self, repo: str, folder: Path, extra: dict[str, bytes] | None = None) -> str:
        """Commit a local model folder's files (e.g. the demo model), plus `extra` ones."""
        files = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        return self.commit(repo, {**files, **(extra or {})})

    def requests_between(self, t0: float, t1: float) -> list[tuple[float, str, str]]:
        with self.state.lock:
            return [r for r in self.state.requests if t0 <= r[0] <= t1]


@contextmanager
def fake_hub(rate_bps: float | None = None) -> Iterator[FakeHub]:
    """A running fake Hub on a free port of 127.0.0.1, stopped on exit."""
    state = HubState(rate_bps=rate_bps)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield FakeHub(server, state)
    finally:
        server.shutdown()
        server.server_close()
