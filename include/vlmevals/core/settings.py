"""Service configuration, read from the environment (and an optional `.env`).

One place so that DAG tasks, the plugin and the CLI agree on paths and URLs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[3]
LOCAL_DIR = PROJECT_ROOT / ".local"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = Field(
        default="postgresql+psycopg://evals@127.0.0.1:55432/evals",
        alias="DATABASE_URL",
        description="Our tables (not Airflow's metadata DB).",
    )
    vlmeval_root: Path | None = Field(default=None, alias="VLMEVAL_ROOT")
    vlmeval_outputs: Path | None = Field(default=None, alias="VLMEVAL_OUTPUTS")
    vlmeval_python: str | None = Field(default=None, alias="VLMEVAL_PYTHON")
    lmu_data: Path = Field(default=LOCAL_DIR / "LMUData", alias="LMUData")
    models_dir: Path = Field(default=LOCAL_DIR / "models", alias="EVALS_MODELS_DIR")
    judge: str = Field(default="exact_matching", alias="EVALS_JUDGE")
    judge_base_url: str | None = Field(default=None, alias="EVALS_JUDGE_BASE_URL")
    judge_key: str | None = Field(default=None, alias="EVALS_JUDGE_KEY")
    airflow_conn_id: str = Field(default="evals_db", alias="EVALS_CONN_ID")
    progress_interval_s: float = Field(default=2.0, alias="EVALS_PROGRESS_INTERVAL_S")

    @field_validator("database_url")
    @classmethod
    def _normalise_driver(cls, v: str) -> str:
        # Airflow connections and most docs say postgresql:// or postgres://; we run on psycopg 3.
        for prefix in ("postgres://", "postgresql://"):
            if v.startswith(prefix):
                return "postgresql+psycopg://" + v[len(prefix) :]
        return v

    @model_validator(mode="after")
    def _default_outputs(self) -> Settings:
        if self.vlmeval_outputs is None:
            self.vlmeval_outputs = self.vlmeval_root / "outputs" if self.vlmeval_root else LOCAL_DIR / "outputs"
        return self

    @property
    def outputs_dir(self) -> Path:
        assert self.vlmeval_outputs is not None
        return self.vlmeval_outputs


@lru_cache
def get_settings() -> Settings:
    return Settings()
