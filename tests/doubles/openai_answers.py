"""Answer policies of the OpenAI-compatible test server: which answer a request gets (right, wrong, fixed, echo),
when it fails, and the benchmark entries an oracle looks answers up in. Kept apart from the HTTP plumbing."""

from __future__ import annotations

import base64
import binascii
import csv
import dataclasses
import random
import re
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}
Mode = Literal["fixed", "oracle", "wrong", "echo"]
FailMode = Literal["500", "malformed", "empty", "429"]
MODES: tuple[str, ...] = ("fixed", "oracle", "wrong", "echo")
FAIL_MODES: tuple[str, ...] = ("500", "malformed", "empty", "429")
_OPTION_RE = re.compile(r"^([A-Z])\.\s", re.MULTILINE)
_DATA_URL_RE = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<b64>.*)$", re.DOTALL)


@dataclass
class Policy:
    """How the server answers; every field can be changed at runtime through `POST /admin/policy`.

    mode: `fixed` returns `text`; `oracle` looks the prompt's question up (in `answers` and `tsv`) and returns
    the stored answer (the letter for MCQ); `wrong` returns an option letter that is not the answer; `echo`
    returns the prompt text. `fail_every=N` fails every N-th chat request, `fail_rate` a random share of them
    (seeded by `seed`); `fail_mode` picks HTTP 500, a 200 with a non-JSON body, a 200 with empty content, or
    HTTP 429 with `Retry-After: retry_after_s` (a rate limit). The stats sum the `usage` of the answers sent.
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
    retry_after_s: float = 0.0

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
class Entry:
    """One known question: its text, its options (letter -> text) and the correct answer."""

    question: str
    answer: str
    options: tuple[tuple[str, str], ...] = ()


def load_tsv_entries(path: str | Path) -> list[Entry]:
    """Read an LMUData TSV (columns question, answer, optional A..Z) without pandas: fast and import-light."""
    csv.field_size_limit(sys.maxsize)  # the image column holds whole base64 images
    entries: list[Entry] = []
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
            entry = Entry(question=str(question).strip(), answer=str(answer).strip(), options=options)
            entries.append(entry)
    return entries


class State:
    """Policy, lookup tables and counters shared by all request threads (guarded by one lock)."""

    def __init__(self, policy: Policy) -> None:
        self.lock = threading.Lock()
        self.policy = policy
        self.entries: list[Entry] = []
        self.rng = random.Random(policy.seed)
        self.stats: dict[str, Any] = {}
        self.reset_stats()
        self._rebuild()

    def reset_stats(self) -> None:
        """Zero the counters (tests call this between phases). `in_flight` survives (requests still being served);
        `first_chat_at` / `last_chat_end_at` (epoch seconds) bound the request phase a bench times."""
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
            "in_flight": self.stats.get("in_flight", 0),
            "max_in_flight": 0,
            "first_chat_at": None,
            "last_chat_end_at": None,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "prompts": [],
        }

    def _rebuild(self) -> None:
        entries = [Entry(question=q.strip(), answer=str(a).strip()) for q, a in self.policy.answers.items()]
        if self.policy.tsv:
            entries += load_tsv_entries(self.policy.tsv)
        self.entries = entries
        self.rng = random.Random(self.policy.seed)

    def begin_chat(self, prompt: str, images: int, model: str | None) -> tuple[Policy, bool]:
        """Count a chat request and decide whether the policy injects a failure into it."""
        with self.lock:
            policy, stats = self.policy, self.stats
            stats["chat_completions"] += 1
            stats["in_flight"] += 1
            stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
            if stats["first_chat_at"] is None:
                stats["first_chat_at"] = time.time()
            stats["images"] += images
            stats["last_prompt"] = prompt
            stats["prompts"].append(prompt[:200])
            stats["last_model"] = model
            nth = stats["chat_completions"]
            fail = (policy.fail_every > 0 and nth % policy.fail_every == 0) or (
                policy.fail_rate > 0 and self.rng.random() < policy.fail_rate
            )
            if fail:
                stats["failed"] += 1
                stats["failed_by_mode"][policy.fail_mode] += 1
        return policy, fail

    def end_chat(self) -> None:
        """A chat request left the server (answered or failed): the in-flight count and the end of the last one."""
        with self.lock:
            self.stats["in_flight"] -= 1
            self.stats["last_chat_end_at"] = time.time()

    def finish_chat(self, answer: str, matched: bool, fail: bool, usage: Mapping[str, int] | None = None) -> None:
        with self.lock:
            if usage:
                self.stats["prompt_tokens"] += usage["prompt_tokens"]
                self.stats["completion_tokens"] += usage["completion_tokens"]
            if not fail:
                self.stats["answered"] += 1
                by_answer = self.stats["by_answer"]
                by_answer[answer[:40]] = by_answer.get(answer[:40], 0) + 1
            if not matched:
                self.stats["unmatched"] += 1

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

    def lookup(self, prompt: str) -> Entry | None:
        """Best known entry for a prompt: question text contained in it, ties broken by matching options."""
        best: tuple[int, int] | None = None
        found: Entry | None = None
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


def choose_answer(state: State, policy: Policy, prompt: str) -> tuple[str, bool]:
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


def completion(answer: str, prompt: str, model: str) -> dict[str, Any]:
    """An OpenAI chat.completion body (non-streaming) carrying `answer`."""
    prompt_tokens, completion_tokens = len(prompt.split()) + 1, max(len(answer.split()), 1)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop", "logprobs": None}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
