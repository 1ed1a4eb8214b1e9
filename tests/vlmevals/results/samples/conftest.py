"""Fixtures of the per-sample tests: real VLMEvalKit output trees (tests/vlmeval_outputs.py) and a queued run."""

from __future__ import annotations

from typing import Any

import pytest

from tests.vlmeval_outputs import make_real_outputs


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return make_real_outputs(tmp_path_factory.mktemp("real"))


@pytest.fixture()
def run_id(seeded) -> int:
    from vlmevals.db.engine import session_scope
    from vlmevals.runs import lifecycle as runs

    with session_scope(seeded) as s:
        return runs.create_run(s, "demo-shapes-mcq", "demo-tiny-idefics3", triggered_by="airflow_rest").id
