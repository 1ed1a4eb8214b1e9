"""`vlmevals datasets fetch|list` against a local dataset host."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from typer.testing import CliRunner
from vlmevals.cli.datasets import datasets_app
from vlmevals.db.engine import session_scope
from vlmevals.db.models import Task

from tests.doubles.dataset_host import dataset_host

pytestmark = pytest.mark.integration
BODY = b"index\tquestion\tanswer\timage_path\n" + b"".join(b"%d\tq\tA\ti.jpg\n" % i for i in range(100))


def test_fetch_then_list(seeded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALS_OFFLINE", raising=False)
    runner = CliRunner()
    with dataset_host() as host:
        url = host.add("/lab/CLI_BENCH.tsv", BODY)
        with session_scope(seeded) as s:
            s.add(
                Task(
                    name="cli-bench",
                    display_name="C",
                    vlmeval_data="CLI_BENCH",
                    dataset_url=url,
                    dataset_md5=hashlib.md5(BODY).hexdigest(),
                )
            )
            s.add(Task(name="cli-bench-2", display_name="C2", vlmeval_data="CLI_BENCH"))
        before = json.loads(runner.invoke(datasets_app, ["list", "--json"]).output)
        assert {"dataset": "CLI_BENCH", "present": False}.items() <= next(
            r for r in before if r["dataset"] == "CLI_BENCH"
        ).items()
        r = runner.invoke(datasets_app, ["fetch", "cli-bench"])
        assert r.exit_code == 0 and "md5 verified" in r.output and "100 rows" in r.output, r.output
        assert host.state.gets["/lab/CLI_BENCH.tsv"] == 1
    rows = {x["dataset"]: x for x in json.loads(runner.invoke(datasets_app, ["list", "--json"]).output)}
    row = rows["CLI_BENCH"]
    assert row["present"] and row["bytes"] == len(BODY) and row["md5_verified"] is True
    assert row["tasks"] == ["cli-bench", "cli-bench-2"]
    assert rows["MMBench_DEV_EN"]["present"] is False  # seeded, registered, not downloaded
    bad = runner.invoke(datasets_app, ["fetch", "no-such-task"])
    assert bad.exit_code == 1 and "no-such-task" in bad.output
