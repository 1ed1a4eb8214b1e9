"""Judge prices: the seed file's list, EVALS_JUDGE_PRICES winning for the models it names."""

from __future__ import annotations

from pathlib import Path

import pytest
from vlmevals.catalogue.prices import judge_prices, seed_prices
from vlmevals.core.settings import Settings
from vlmevals.runs.judge_usage import price_for


def test_seed_prices_apply_to_the_dated_name_and_the_environment_wins() -> None:
    shipped = judge_prices(Settings.model_validate({}))
    got = price_for("gpt-4o-mini-2024-07-18", shipped)  # the name VLMEvalKit sends
    assert got is not None and (got.input, got.output) == (0.15, 0.6)
    env = {"EVALS_JUDGE_PRICES": {"gpt-4o-mini": {"input": 0.1, "output": 0.2}, "my-judge": {"input": 0, "output": 0}}}
    mine = judge_prices(Settings.model_validate(env))
    assert (mine["gpt-4o-mini"].input, mine["my-judge"].output) == (0.1, 0.0)
    assert mine["gpt-4o"] == shipped["gpt-4o"], "models the environment does not name keep the seed file's price"


def test_a_malformed_price_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "seed.yaml"
    bad.write_text("judge_prices:\n  gpt-4o: {input: cheap}\n")
    with pytest.raises(ValueError, match=r"seed.yaml: judge_prices must map a model name to \{input: USD"):
        seed_prices(bad)
