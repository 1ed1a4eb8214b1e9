"""Judge prices: the seed file's `judge_prices` (list prices the catalogue ships), each overridden by
EVALS_JUDGE_PRICES (a contract price, a self-hosted judge's cost). USD per million input/output tokens, by the
judge model's name as sent or without its date (runs.judge_usage.price_for).

Read from the file, not a table: a price is configuration the gateway applies when a scoring step ends, not a
catalogue row users edit through the API."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml
from pydantic import TypeAdapter

from vlmevals.catalogue.seed import SEED_FILE
from vlmevals.core.settings import JudgePrice, Settings

_PRICES = TypeAdapter(dict[str, JudgePrice])


@functools.cache
def seed_prices(path: Path = SEED_FILE) -> dict[str, JudgePrice]:
    """The seed file's `judge_prices` (read once per process); a malformed entry fails naming the file."""
    data = yaml.safe_load(path.read_text()) or {}
    try:
        return _PRICES.validate_python(data.get("judge_prices") or {})
    except ValueError as err:
        raise ValueError(f"{path}: judge_prices must map a model name to {{input: USD, output: USD}}: {err}") from err


def judge_prices(settings: Settings, path: Path = SEED_FILE) -> dict[str, JudgePrice]:
    """What each judge model costs: the seed file's prices, EVALS_JUDGE_PRICES winning for the models it names."""
    return {**seed_prices(path), **settings.judge_prices}
