"""A scriptable OpenAI-compatible chat server: the test double for served models and LLM judges.

Why: VLMEvalKit's `--base-url` path (class LMDeployAPI) and our judge settings talk to real vLLM/LMDeploy
servers. Tests need the same wire protocol with answers we control (always right, always wrong, slow,
flaky) so inference, scoring and failure counting can be checked without a GPU.

Standard library only (ThreadingHTTPServer): starts in milliseconds, needs no event loop, and a blocking
`delay_s` sleep only holds its own request thread. Binds loopback only.

Endpoints: `GET /v1/models`, `POST /v1/chat/completions` (non-streaming), `GET /health`,
`GET|POST /admin/policy` (read / merge-update the answer policy), `GET /admin/stats`, `POST /admin/reset`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import csv
import dataclasses
import json
import random
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}
Mode = Literal["fixed", "oracle", "wrong", "echo"]
FailMode = Literal["500", "malformed", "empty"]
MODES: tuple[str, ...] = ("fixed", "oracle", "wrong", "echo")
FAIL_MODES: tuple[str, ...] = ("500", "malformed", "empty")
_OPTION_RE = re.compile(r"^([A-Z])\.\s", re.MULTILINE)
_DATA_URL_RE = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<b64>.*)$", re.DOTALL)


@dataclass
class Policy:
    """How the server answers; every field can be changed at runtime through `POST /admin/policy`.

    mode: `fixed` returns `text`; `oracle` looks the prompt's question up (in `answers` and `tsv`) and returns
    the stored answer (the letter for MCQ); `wrong` returns an option letter that is not the answer; `echo`
    returns the prompt text. `fail_every=N` fails every N-th chat request, `fail_rate` a random share of them
    (seeded by `seed`); `fail_mode` picks HTTP 500, a 200 with a non-JSON body, or a 200 with empty content.
    """

    mode: Mode = "fixed"
    text: str = "A"
    answers: dict[str, str] = field(default_factory=dict)
    tsv: str | None = None
    delay_s: float = 0.0
    fail_rate: float = 0.0
    fail_every: int = 0
    fail_mode: FailMode = "500"
    seed: int | None = 0
    model_name: str = "test-model"

    def validate(self) -> None:
        """Reject nonsense early so a typo in a test fails loudly instead of answering 'A' silently."""
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.fail_mode not in FAIL_MODES:
            raise ValueError(f"fail_mode must be one of {FAIL_MODES}, got {self.fail_mode!r}")
        if not 0.0 <= float(self.fail_rate) <= 1.0:
            raise ValueError("fail_rate must be within [0, 1]")
        if int(self.fail_every) < 0 or float(self.delay_s) < 0:
            raise ValueError("fail_every and delay_s must be >= 0")
        if self.tsv is not None and not Path(self.tsv).is_file():
            raise ValueError(f"tsv not found: {self.tsv}")


@dataclass(frozen=True)
class _Entry:
    """One known question: its text, its options (letter -> text) and the correct answer."""

    question: str
    answer: str
    options: tuple[tuple[str, str], ...] = ()


def load_tsv_entries(path: str | Path) -> list[_Entry]:
    """Read an LMUData TSV (columns question, answer, optional A..Z) without pandas: fast and import-light."""
    csv.field_size_limit(sys.maxsize)  # the image column holds whole base64 images
    entries: list[_Entry] = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            question, answer = row.get("question"), row.get("answer")
            if not question or answer is None:
                continue
            options = tuple(
                (letter, str(row[letter]))
                for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                if row.get(letter) not in (None, "", "nan")
            )
            entry = _Entry(question=str(question).strip(), answer=str(answer).strip(), options=options)
            entries.append(entry)
    return entries


class _State:
    """Policy, lookup tables and counters shared by all request threads (guarded by one lock)."""

    def __init__(self, policy: Policy) -> None:
        self.lock = threading.Lock()
        self.policy = policy
        self.entries: list[_Entry] = []
        self.rng = random.Random(policy.seed)
        self.stats: dict[str, Any] = {}
        self.reset_stats()
        self._rebuild()

    def reset_stats(self) -> None:
        """Zero the counters (tests call this between phases)."""
        self.stats = {
            "requests": 0,
            "models": 0,
            "chat_completions": 0,
            "answered": 0,
            "failed": 0,
            "failed_by_mode": {m: 0 for m in FAIL_MODES},
            "bad_requests": 0,
            "unmatched": 0,
            "images": 0,
            "by_answer": {},
            "last_prompt": None,
            "last_model": None,
        }

    def _rebuild(self) -> None:
        entries = [_Entry(question=q.strip(), answer=str(a).strip()) for q, a in self.policy.answers.items()]
        if self.policy.tsv:
            entries += load_tsv_entries(self.policy.tsv)
        self.entries = entries
        self.rng = random.Random(self.policy.seed)

    def update(self, changes: Mapping[str, Any]) -> Policy:
        """Merge `changes` into the policy; validate before swapping so a bad update changes nothing."""
        names = {f.name for f in dataclasses.fields(Policy)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown policy fields: {sorted(unknown)}")
        with self.lock:
            new = dataclasses.replace(self.policy, **changes)
            new.validate()
            self.policy = new
            self._rebuild()
            return new

    def lookup(self, prompt: str) -> _Entry | None:
        """Best known entry for a prompt: question text contained in it, ties broken by matching options."""
        best: tuple[int, int] | None = None
        found: _Entry | None = None
        for entry in self.entries:
            if not entry.question or entry.question not in prompt:
                continue
            opt_hits = sum(f"{letter}. {text}" in prompt for letter, text in entry.options)
            if entry.options and opt_hits < len(entry.options):
                opt_hits -= 1000  # options present in the TSV but not in the prompt: weak match
            score = (opt_hits, len(entry.question))
            if best is None or score > best:
                best, found = score, entry
        return found


def prompt_text(messages: list[dict[str, Any]]) -> tuple[str, int]:
    """Join the text parts of all messages; count image parts and check they are decodable data/file URLs."""
    texts: list[str] = []
    images = 0
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        if not isinstance(content, list):
            raise ValueError("message content must be a string or a list of parts")
        for part in content:
            kind = part.get("type")
            if kind == "text":
                texts.append(str(part.get("text", "")))
            elif kind in ("image_url", "video_url"):
                url = (part.get(kind) or {}).get("url", "")
                match = _DATA_URL_RE.match(url)
                if match:
                    try:
                        base64.b64decode(match["b64"], validate=True)
                    except (binascii.Error, ValueError) as err:
                        raise ValueError(f"{kind} is not valid base64") from err
                elif not url.startswith(("file://", "http://", "https://")):
                    raise ValueError(f"{kind}.url must be a data:, file: or http(s): URL")
                images += 1
            else:
                raise ValueError(f"unsupported content part type {kind!r}")
    return "\n".join(texts), images


def option_letters(prompt: str) -> list[str]:
    """Option letters offered in a VLMEvalKit MCQ prompt ("A. ..." lines)."""
    return list(dict.fromkeys(_OPTION_RE.findall(prompt)))


def choose_answer(state: _State, policy: Policy, prompt: str) -> tuple[str, bool]:
    """The answer text under `policy`, and whether the question was found (for the `unmatched` counter)."""
    if policy.mode == "fixed":
        return policy.text, True
    if policy.mode == "echo":
        return prompt, True
    entry = state.lookup(prompt)
    if policy.mode == "oracle":
        return (entry.answer, True) if entry else (policy.text, False)
    # wrong: any offered letter except the correct one; "Z" when we cannot tell (never a real option here)
    if entry is None:
        return "Z", False
    letters = option_letters(prompt) or [letter for letter, _ in entry.options]
    for letter in letters or list("ABCD"):
        if letter != entry.answer.strip().upper():
            return letter, True
    return "Z", True


class _Handler(BaseHTTPRequestHandler):
    """Routes requests; JSON in, JSON out, always with a Content-Length so keep-alive clients behave."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging unless asked (pytest output stays readable)."""
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes | dict[str, Any], content_type: str = "application/json") -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        self._send(status, {"error": {"message": message, "type": kind, "code": status}})

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
        with state.lock:
            policy = state.policy
            stats = state.stats
            stats["chat_completions"] += 1
            stats["images"] += images
            stats["last_prompt"] = prompt
            stats["last_model"] = body.get("model")
            nth = stats["chat_completions"]
            fail = (policy.fail_every > 0 and nth % policy.fail_every == 0) or (
                policy.fail_rate > 0 and state.rng.random() < policy.fail_rate
            )
            if fail:
                stats["failed"] += 1
                stats["failed_by_mode"][policy.fail_mode] += 1
        if policy.delay_s:
            time.sleep(policy.delay_s)
        if fail and policy.fail_mode == "500":
            self._error(500, "injected failure", "server_error")
            return
        if fail and policy.fail_mode == "malformed":
            self._send(200, b'{"choices": [{"message": ', "application/json")
            return
        answer, matched = ("", True) if fail else choose_answer(state, policy, prompt)
        with state.lock:
            if not fail:
                state.stats["answered"] += 1
                by_answer = state.stats["by_answer"]
                by_answer[answer[:40]] = by_answer.get(answer[:40], 0) + 1
            if not matched:
                state.stats["unmatched"] += 1
        prompt_tokens, completion_tokens = len(prompt.split()) + 1, max(len(answer.split()), 1)
        self._send(
            200,
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model") or policy.model_name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer carrying the shared state; daemon threads so a hung client never blocks exit."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], state: _State, verbose: bool = False) -> None:
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
        self.host, self.port = server.server_address[0], int(server.server_address[1])
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
            return json.loads(json.dumps(self._server.state.stats))

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
    server = _Server(("127.0.0.1", port), _State(pol), verbose=verbose)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="openai-test-server", daemon=True
    )
    thread.start()
    return ServerHandle(server, thread)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m vlmevals.devtools.openai_server", description="OpenAI-compatible test server."
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
