"""Import VLMEvalKit into our own process (the demo's training reads its prompts) without its import-time noise
reaching our console.

`import vlmeval` runs its `load_env()`: `logging.basicConfig()` (a stderr handler on the root logger) and, when no
`.env` file sits beside site-packages, `logging.error("Did not detect the .env file …")` on the root logger. A
newcomer reads that line as a failure. Keys belong in the environment here (EVALS_JUDGE_* etc.), so the missing
file is expected. VLMEvalKit's subprocesses (eval runs) are untouched: their logs still go to the run's files.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType


class _FromVlmeval(logging.Filter):
    """Drops the records VLMEvalKit's own modules log on the root logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "vlmeval" not in Path(record.pathname).parts


@contextmanager
def vlmeval_logging_quiet() -> Iterator[None]:
    """While inside: VLMEvalKit's root-logger records are dropped and its `basicConfig()` installs no handler
    (it does nothing when the root logger has one: our NullHandler, removed again afterwards)."""
    root = logging.getLogger()
    guard, noise = logging.NullHandler(), _FromVlmeval()
    root.addHandler(guard)
    root.addFilter(noise)
    try:
        yield
    finally:
        root.removeFilter(noise)
        root.removeHandler(guard)


def import_quietly(name: str) -> ModuleType:
    """`importlib.import_module(name)` for a VLMEvalKit module, quiet on its first import."""
    if name in sys.modules:
        return sys.modules[name]
    with vlmeval_logging_quiet():
        return importlib.import_module(name)
