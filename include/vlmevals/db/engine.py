"""Engines and sessions for our database, and the Alembic entry points.

DAG tasks reach the database through an Airflow Connection (so deployments configure it the Airflow way:
`vlmevals.airflow.hooks.engine_for_tasks`); the plugin and the CLI use DATABASE_URL. Both end up here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from vlmevals.core.settings import PROJECT_ROOT, Settings, get_settings

ALEMBIC_INI = PROJECT_ROOT / "sql" / "alembic.ini"


if TYPE_CHECKING:
    from alembic.config import Config


def normalise_url(url: str) -> str:
    return Settings.model_validate({"DATABASE_URL": url}).database_url


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> Engine:
    url = normalise_url(url or get_settings().database_url)
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on error. Opened by whoever starts the work (a pipeline
    step, a route, a CLI command), with the engine of its edge: `engine_for_tasks()` in DAG tasks,
    `get_engine()` (DATABASE_URL) in the API, the CLI, dev tools and tests."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session, session.begin():
        yield session


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config  # alembic only where migrations run

    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(Path(ALEMBIC_INI).parent))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url or get_settings().database_url).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)
