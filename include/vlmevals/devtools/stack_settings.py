"""The local stack's settings, and which value wins when the environment and `.local/env.sh` disagree.

Rule: a variable you set in the environment wins. `.local/env.sh` marks the values the stack derived itself
(`EVALS_STACK_DERIVED`, a JSON object); when a shell that sourced it starts the stack again, a variable still
holding the value env.sh derived counts as unset and is derived afresh (so setting `VLMEVAL_ROOT` after
`source .local/env.sh` moves the outputs to `$VLMEVAL_ROOT/outputs`); a variable you changed is yours and wins.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from vlmevals.core.settings import LOCAL_DIR

CPU_SLOTS = 3
"""`gpu` pool slots when the machine has no GPU (and EVALS_GPU_SLOTS is unset): inference then runs on CPU
without leases, so a few may share the cores; the demo's nine checkpoint runs are mostly process start-up."""

AIRFLOW_TUNING = {
    "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",  # each task start waits one loop (default 1 s)
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
}
"""Airflow settings of the local stack (docker-compose.yaml sets the same): a task start waits one scheduler loop."""

AUTH_MANAGERS = {
    "simple": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
    "fab": "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
}
"""`EVALS_AUTH_MANAGER` → Airflow's `core.auth_manager`: SimpleAuthManager (Airflow's default, for development) or
FAB's (users and roles in the metadata DB, what production Airflow mostly runs; the `fab` extra installs it)."""

DERIVED_VAR = "EVALS_STACK_DERIVED"
"""Written into `.local/env.sh`: the variables (name → value) the stack derived rather than was given."""


def derived_values(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The values an earlier `.local/env.sh` marked as derived (empty when it was not sourced)."""
    raw = (os.environ if environ is None else environ).get(DERIVED_VAR) or ""
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def user_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment without the stack's own earlier derivations that a sourced env.sh left there unchanged."""
    env = dict(os.environ if environ is None else environ)
    for name, value in derived_values(env).items():
        if env.get(name) == value:
            del env[name]
    env.pop(DERIVED_VAR, None)
    return env


class _UserEnvSource(EnvSettingsSource):
    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(user_environ(), self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class StackSettings(BaseSettings):
    """The local stack (`vlmevals up`, tests): where it lives, its ports, its databases and executor."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    home: Path = Field(default=LOCAL_DIR, alias="EVALS_HOME")
    pg_port: int = Field(default=55432, alias="EVALS_PG_PORT")
    api_port: int = Field(default=8080, alias="EVALS_AIRFLOW_PORT")
    gpu_slots: int | None = Field(default=None, alias="EVALS_GPU_SLOTS")
    parallelism: int = Field(default=4, alias="EVALS_AIRFLOW_PARALLELISM")
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    airflow_db_url: str | None = Field(default=None, alias="AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    executor: str = Field(default="LocalExecutor", alias="EVALS_EXECUTOR")
    redis_url: str | None = Field(default=None, alias="REDIS_URL", description="Celery broker (CeleryExecutor)")
    auth_manager: Literal["simple", "fab"] = Field(default="simple", alias="EVALS_AUTH_MANAGER")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _UserEnvSource(settings_cls), dotenv_settings, file_secret_settings


@lru_cache
def get_stack_settings() -> StackSettings:
    """Read once per process, like `get_settings()`; tests that change the environment call `.cache_clear()`."""
    return StackSettings()
