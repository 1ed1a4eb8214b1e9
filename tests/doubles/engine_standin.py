"""A stand-in inference engine for tests: parses the command line each real engine documents and answers the OpenAI
protocol (/health, /v1/models, /v1/chat/completions) for the served model name, like vLLM, SGLang, LMDeploy and
`transformers serve` do. Installed on a test's PATH as `vllm`, `lmdeploy`, `transformers` and `python` (for
`python -m sglang.launch_server`) by small wrapper scripts.

Its own extra flags: `--load-seconds S` (a slow model load: no port opened before), `--fail-load` (exit 1 while
loading), `--answer-seconds S` (each answer takes S seconds, for runs long enough to kill the engine mid-run) and
`--throughput-curve 1:R1,4:R4,...` (a continuous-batching engine's answers per second at each concurrency, for
bench/serving_bench.py: the requests in flight share the rate the curve gives for their number, interpolated
log-linearly in the concurrency and flat past its ends). `GET /stats` says how many requests it answered, the
most it had in flight at once and the seconds it had any in flight (busy_s).
It forks one worker process into its group, as real engines do, and prints the worker's pid; it prints
"Loading <model>" once per load, as `transformers serve` does. Asked as the environment's `python -c ...` (the
service's version probe), it prints a version.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def parse(engine: str, argv: list[str]) -> tuple[argparse.Namespace, str]:
    """The engine's documented flags; an unknown flag exits 2 with argparse's message, as the engines do."""
    p = argparse.ArgumentParser(prog=engine)
    p.add_argument("--load-seconds", type=float, default=0.0)
    p.add_argument("--fail-load", action="store_true")
    p.add_argument("--answer-seconds", type=float, default=0.0)
    p.add_argument("--throughput-curve", type=parse_curve, default=None)
    if engine == "vllm":
        assert argv[0] == "serve", argv
        p.add_argument("model")
        p.add_argument("--host", required=True)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--served-model-name", required=True)
        p.add_argument("--tensor-parallel-size", type=int, required=True)
        p.add_argument("--max-model-len", type=int)
        a = p.parse_args(argv[1:])
        return a, a.served_model_name
    if engine == "sglang":
        assert argv[:2] == ["-m", "sglang.launch_server"], argv
        p.add_argument("--model-path", required=True)
        p.add_argument("--host", required=True)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--tp-size", type=int, required=True)
        p.add_argument("--served-model-name", required=True)
        a = p.parse_args(argv[2:])
        return a, a.served_model_name
    if engine == "lmdeploy":
        assert argv[:2] == ["serve", "api_server"], argv
        p.add_argument("model_path")
        p.add_argument("--server-name", required=True)
        p.add_argument("--server-port", type=int, required=True)
        p.add_argument("--tp", type=int, required=True)
        p.add_argument("--model-name", required=True)
        a = p.parse_args(argv[2:])
        a.host, a.port = a.server_name, a.server_port
        return a, a.model_name
    assert engine == "transformers" and argv[0] == "serve", argv
    p.add_argument("model")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args(argv[1:])
    if not os.path.isdir(a.model):  # it loads FORCE_MODEL from the working folder, then answers to that name only
        sys.exit(f"OSError: {a.model} is not a local folder")
    return a, a.model


def parse_curve(text: str) -> list[tuple[float, float]]:
    """`1:0.95,4:4.5` -> [(1, 0.95), (4, 4.5)]: (concurrency, answers per second), concurrency ascending."""
    points = sorted((float(c), float(r)) for c, r in (item.split(":") for item in text.split(",")))
    if not points or any(c < 1 or r <= 0 for c, r in points):
        raise argparse.ArgumentTypeError(f"--throughput-curve wants CONCURRENCY:RATE,... with both > 0, not {text!r}")
    return points


def curve_rate(points: list[tuple[float, float]], c: float) -> float:
    """Answers per second at concurrency c: log-linear between the curve's points, flat past its ends."""
    if c <= points[0][0]:
        return points[0][1]
    for (c0, r0), (c1, r1) in itertools.pairwise(points):
        if c <= c1:
            return r0 + (r1 - r0) * (math.log(c) - math.log(c0)) / (math.log(c1) - math.log(c0))
    return points[-1][1]


class Batcher:
    """Processor sharing: n requests in flight each progress at curve_rate(n) / n answers per second."""

    TICK_S = 0.02

    def __init__(self, points: list[tuple[float, float]] | None) -> None:
        self.points, self.lock = points, threading.Lock()
        self.in_flight = self.peak = self.answered = 0
        self.busy_s, self.busy_since = 0.0, 0.0  # seconds with at least one request in flight

    def answer(self, fixed_s: float) -> None:
        with self.lock:
            if self.in_flight == 0:
                self.busy_since = time.monotonic()
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            time.sleep(fixed_s)
            left, last = 1.0, time.monotonic()  # one answer's work, done at the rate of the time actually slept
            while self.points and left > 0:
                per_request = curve_rate(self.points, self.in_flight) / self.in_flight
                time.sleep(min(self.TICK_S, left / per_request))
                now = time.monotonic()
                left, last = left - per_request * (now - last), now
        finally:
            with self.lock:
                self.in_flight -= 1
                self.answered += 1
                if self.in_flight == 0:
                    self.busy_s += time.monotonic() - self.busy_since


def handler(served: str, answer_s: float = 0.0, curve: Batcher | None = None) -> type[BaseHTTPRequestHandler]:
    batcher = curve or Batcher(None)

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200, {"status": "ok"})
            elif self.path == "/stats":
                self._send(200, {
                    "answered": batcher.answered, "in_flight": batcher.in_flight, "peak": batcher.peak,
                    "busy_s": round(batcher.busy_s, 2),
                })  # fmt: skip
            elif self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": served, "object": "model"}]})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": "not found"})
            elif body.get("model") != served:
                self._send(404, {"error": {"message": f"model {body.get('model')!r} not served; {served!r} is"}})
            else:
                batcher.answer(answer_s)
                self._send(200, {
                    "id": "chatcmpl-standin", "object": "chat.completion", "model": served,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": "A"}}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
                })  # fmt: skip

        def log_message(self, format: str, *args: Any) -> None:
            print("request:", format % args, flush=True)

    return Handler


def main() -> None:
    engine, argv = sys.argv[1], sys.argv[2:]
    if argv[:1] == ["-c"]:  # the version probe, asked of the engine environment's python
        print("0.0.1+standin")
        return
    args, served = parse(engine, argv)
    print(f"{engine} stand-in: Loading {served} (argv {argv})", flush=True)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    print(f"worker pid {worker.pid}", flush=True)
    time.sleep(args.load_seconds)
    if args.fail_load:
        print("RuntimeError: CUDA out of memory (stand-in)", flush=True)
        sys.exit(1)
    ThreadingHTTPServer.request_queue_size = 128  # many clients connect at once, as to a batching engine
    server = ThreadingHTTPServer(
        (args.host, args.port), handler(served, args.answer_seconds, Batcher(args.throughput_curve))
    )
    print(f"serving {served} on http://{args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
