"""A stand-in inference engine for tests: parses the command line each real engine documents and answers the OpenAI
protocol (/health, /v1/models, /v1/chat/completions) for the served model name, like vLLM, SGLang, LMDeploy and
`transformers serve` do. Installed on a test's PATH as `vllm`, `lmdeploy`, `transformers` and `python` (for
`python -m sglang.launch_server`) by small wrapper scripts.

Its own extra flags: `--load-seconds S` (a slow model load: no port opened before), `--fail-load` (exit 1 while
loading) and `--answer-seconds S` (each answer takes S seconds, for runs long enough to kill the engine mid-run).
It forks one worker process into its group, as real engines do, and prints the worker's pid; it prints
"Loading <model>" once per load, as `transformers serve` does. Asked as the environment's `python -c ...` (the
service's version probe), it prints a version.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def parse(engine: str, argv: list[str]) -> tuple[argparse.Namespace, str]:
    """The engine's documented flags; an unknown flag exits 2 with argparse's message, as the engines do."""
    p = argparse.ArgumentParser(prog=engine)
    p.add_argument("--load-seconds", type=float, default=0.0)
    p.add_argument("--fail-load", action="store_true")
    p.add_argument("--answer-seconds", type=float, default=0.0)
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


def handler(served: str, answer_s: float = 0.0) -> type[BaseHTTPRequestHandler]:
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
                time.sleep(answer_s)
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
    server = ThreadingHTTPServer((args.host, args.port), handler(served, args.answer_seconds))
    print(f"serving {served} on http://{args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
