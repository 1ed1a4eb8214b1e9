"""Shared fixtures: a real PostgreSQL started by the tests (or TEST_DATABASE_URL), migrated databases, and an
Airflow environment for whole-DAG runs.

Airflow reads its configuration when first imported, so the environment is fixed here, at import time,
before any test module imports airflow; the server behind those URLs is started lazily by a fixture.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.airflow_state import set_eval_run_paused

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".local" / "test-cache"
RUN_DIR = Path(tempfile.mkdtemp(prefix="vlmevals-tests-"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
PG_PORT = _free_port()
SERVER_URL = TEST_DATABASE_URL or f"postgresql+psycopg://evals@127.0.0.1:{PG_PORT}/postgres"


def _db_url(name: str, driver: str = "postgresql+psycopg") -> str:
    base = SERVER_URL.rsplit("/", 1)[0]
    return driver + "://" + base.split("://", 1)[1] + "/" + name


# The LLM judge of the shared live stack: its workers read EVALS_JUDGE_BASE_URL when they start, so the address is
# reserved before the stack starts and the judge double (`stack_judge`) is started on it by the tests that judge.
JUDGE_PORT = _free_port()
JUDGE_BASE_URL = f"http://127.0.0.1:{JUDGE_PORT}/v1"

SUFFIX = uuid.uuid4().hex[:8]
EVALS_DB = f"evals_test_{SUFFIX}"
AIRFLOW_DB = f"airflow_test_{SUFFIX}"

os.environ.update(
    {
        "DATABASE_URL": _db_url(EVALS_DB),
        "AIRFLOW_CONN_EVALS_DB": _db_url(EVALS_DB, "postgresql"),
        "AIRFLOW_HOME": str(RUN_DIR / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _db_url(AIRFLOW_DB, "postgresql+psycopg2"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(RUN_DIR / "airflow" / "logs"),
        "LMUData": str(RUN_DIR / "LMUData"),
        "VLMEVAL_OUTPUTS": str(RUN_DIR / "outputs"),
        "EVALS_MODELS_DIR": str(CACHE / "models"),
        "EVALS_PROGRESS_INTERVAL_S": "0.5",
        "EVALS_BOARD_REFRESH_S": "0",  # every write on the boards at once (test_board_cache checks the window)
        "NO_PROXY": "127.0.0.1,localhost",
    }
)
(RUN_DIR / "LMUData").mkdir(parents=True, exist_ok=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not any(item.iter_markers(name=m) for m in ("integration", "e2e", "browser")):
            item.add_marker("unit")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "unit: fast, no services")


def pytest_unconfigure(config: pytest.Config) -> None:
    if not os.environ.get("KEEP_TEST_FILES"):  # set it to look at a failed run's artifacts afterwards
        import shutil

        shutil.rmtree(RUN_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server for the whole session; the URL of its `postgres` database."""
    if TEST_DATABASE_URL:
        yield SERVER_URL
        return
    from vlmevals.devtools.localpg import LocalPostgres

    pg = LocalPostgres(RUN_DIR / "pgdata", port=PG_PORT)
    pg.start()
    try:
        yield SERVER_URL
    finally:
        if "airflow.settings" in sys.modules:  # close Airflow's pooled connections before the server goes
            sys.modules["airflow.settings"].dispose_orm()
        from vlmevals.db.engine import get_engine

        get_engine.cache_clear()
        pg.stop(mode="fast")


def create_database(name: str) -> None:
    import psycopg

    with psycopg.connect(_db_url("postgres", "postgresql"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


@pytest.fixture(scope="session")
def db_url(pg_server: str) -> str:
    """Our tables, migrated to head, in a database of this session."""
    from vlmevals.db.engine import upgrade

    create_database(EVALS_DB)
    upgrade(os.environ["DATABASE_URL"])
    return os.environ["DATABASE_URL"]


@pytest.fixture()
def engine(db_url: str):
    from sqlalchemy import text
    from vlmevals.db.engine import get_engine

    eng = get_engine(db_url)
    yield eng
    with eng.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE gpu_leases, enrolments, eval_samples, eval_run_events, eval_runs, models, tasks "
                "RESTART IDENTITY CASCADE"
            )
        )
        conn.execute(text("TRUNCATE suite_tasks, suites RESTART IDENTITY CASCADE"))  # issue 12's tables


@pytest.fixture()
def session(engine):
    from vlmevals.db.engine import session_scope

    with session_scope(engine) as s:
        yield s


@pytest.fixture()
def seeded(engine):
    from vlmevals.catalogue.seed import seed
    from vlmevals.db.engine import session_scope

    with session_scope(engine) as s:
        seed(s)
    return engine


@pytest.fixture(scope="session")
def airflow_db(db_url: str) -> str:
    """Airflow's metadata DB, migrated once per session (needed by dag.test())."""
    create_database(AIRFLOW_DB)
    res = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, env=os.environ.copy()
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


@pytest.fixture()
def eval_run_paused(airflow_db: str) -> Iterator[None]:
    """eval_run paused while a test runs it with dag.test(): the scheduler of this session's live stack shares the
    metadata DB and would otherwise schedule the same DAG run's tasks as well (it did: a second `finalize`, and an
    in-process `inference` ended by SIGTERM in CI)."""
    was = set_eval_run_paused(True)
    try:
        yield
    finally:
        if was is not None:
            set_eval_run_paused(was)


@pytest.fixture(scope="session")
def demo_assets(pg_server: str) -> dict[str, Path]:
    """The demo benchmarks (in this session's LMUData) and the demo model (cached across sessions)."""
    from vlmevals.core.settings import get_settings
    from vlmevals.devtools.demo.benchmark import DEMO_BENCHMARKS, write_benchmark
    from vlmevals.devtools.demo.model import build_demo_model

    get_settings.cache_clear()
    settings = get_settings()
    out = {name: write_benchmark(name, settings.lmu_data) for name in DEMO_BENCHMARKS}
    out["model"] = build_demo_model(settings.models_dir / "demo-tiny-idefics3")
    return out


@pytest.fixture()
def queued_run(seeded, demo_assets: dict[str, Path]) -> int:
    """A demo eval run (demo-shapes-mcq x demo-tiny-idefics3) recorded by the real `queue` step, ready to infer."""
    import time

    from vlmevals.pipeline import steps

    info = steps.queue_step(
        seeded,
        {"task": "demo-shapes-mcq", "model": "demo-tiny-idefics3"},
        dag_id="eval_run",
        dag_run_id=f"t__{time.time_ns()}",
        run_type="manual",
        user=None,
    )
    return int(info["eval_run_id"])


@pytest.fixture(scope="session")
def live_stack(airflow_db: str, demo_assets: dict[str, Path]):
    """A running Airflow (api-server, scheduler, dag-processor, triggerer; LocalExecutor) on this session's
    databases, started once and stopped at the end. Yields the `vlmevals.devtools.stack.Stack` driving it."""
    from vlmevals.devtools.stack import Stack, StackSettings

    settings = StackSettings.model_validate(
        {
            "EVALS_HOME": str(RUN_DIR / "stack"),
            "EVALS_AIRFLOW_PORT": _free_port(),
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
            "EVALS_AIRFLOW_PARALLELISM": 4,
        }
    )
    stack = Stack(settings, extra_env={"EVALS_JUDGE_BASE_URL": JUDGE_BASE_URL})
    (RUN_DIR / "stack").mkdir(exist_ok=True)
    res = stack.airflow("pools", "set", "gpu", "2", "GPU slots", check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    from vlmevals.core.settings import get_settings
    from vlmevals.vlmevalkit import registry

    warming = registry.warm_in_background(get_settings())  # as `vlmevals up` does
    stack.start_components()
    try:
        stack.wait_healthy()
        warming.join()
        yield stack
    finally:
        stack.stop(database=False)


@pytest.fixture()
def stack_judge(live_stack, engine):
    """The live stack's LLM judge: the OpenAI-protocol double on the reserved JUDGE_PORT, answering "A" with usage,
    the judge cache emptied first (so what a run asks reaches the double)."""
    from sqlalchemy import text

    from tests.doubles.openai_server import serve

    with engine.begin() as conn:
        conn.execute(text("TRUNCATE judge_cache"))
    with serve(port=JUDGE_PORT, mode="fixed", text="A", model_name="gpt-4o-mini-2024-07-18") as server:
        yield server


# A bin folder that looks like an engine's virtualenv, its commands being the stand-in engine
# (tests/doubles/engine_standin.py): the serving tests and the pipeline's serving steps use it.
STANDIN = Path(__file__).parent / "doubles" / "engine_standin.py"
# command in the bin folder -> the engine it stands in for (`python` takes `-m sglang.launch_server`)
COMMANDS = {"vllm": "vllm", "lmdeploy": "lmdeploy", "transformers": "transformers", "python": "sglang"}


@pytest.fixture()
def standin_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "engine-venv" / "bin"
    bin_dir.mkdir(parents=True)
    for command, engine in COMMANDS.items():
        path = bin_dir / command
        path.write_text(f'#!/bin/sh\nexec {sys.executable} {STANDIN} {engine} "$@"\n')
        path.chmod(0o755)
    return bin_dir
