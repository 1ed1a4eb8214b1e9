"""Service configuration, read from the environment (and an optional `.env`).

One `Settings`, cached by `get_settings()`, so that DAG tasks, the plugin and the CLI agree on paths and URLs;
the GPU section (`settings.gpu`) keeps its own `EVALS_GPU*` variables. Tests that change the environment call
`get_settings.cache_clear()` so that the next `get_settings()` reads it afresh (sections included).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[3]
LOCAL_DIR = PROJECT_ROOT / ".local"
EXPORTERS = ("mlflow", "tensorboard", "wandb")


class GpuSettings(BaseSettings):
    """How a worker finds its GPUs and how long leases live."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    gpus: str | None = Field(
        default=None,
        alias="EVALS_GPUS",
        description="Device indices of this worker ('0,1,3'); 'none' for CPU only; unset: detect",
    )
    host: str | None = Field(
        default=None,
        alias="EVALS_GPU_HOST",
        description="Lease namespace: the machine owning the GPUs (default: hostname)",
    )
    stale_s: float = Field(default=120.0, gt=0, alias="EVALS_GPU_LEASE_STALE_S")
    heartbeat_s: float = Field(default=10.0, gt=0, alias="EVALS_GPU_HEARTBEAT_S")
    wait_s: float = Field(default=6 * 3600.0, ge=0, alias="EVALS_GPU_WAIT_S")
    poll_s: float = Field(default=5.0, gt=0, alias="EVALS_GPU_POLL_S")

    @field_validator("gpus", "host", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        # compose passes unset settings as "": detect / default, not "no GPUs"
        return None if isinstance(v, str) and not v.strip() else v


class JudgePrice(BaseModel):
    """A judge model's price in USD per million tokens (EVALS_JUDGE_PRICES)."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


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
    judge_cache: bool = Field(
        default=True, alias="EVALS_JUDGE_CACHE", description="answer repeated judge requests from our database ('off')"
    )
    judge_prices: dict[str, JudgePrice] = Field(
        default_factory=dict,
        alias="EVALS_JUDGE_PRICES",
        description='USD per million tokens by judge model: {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}',
    )
    judge_max_concurrency: int = Field(
        default=8,
        ge=1,
        alias="EVALS_JUDGE_MAX_CONCURRENCY",
        description="cap on concurrent requests to one judge endpoint, over all running scoring steps",
    )
    judge_retries: int = Field(
        default=4, ge=0, alias="EVALS_JUDGE_RETRIES", description="the gateway's retries of a 429/5xx/network error"
    )
    judge_backoff_s: float = Field(
        default=1.0, ge=0, alias="EVALS_JUDGE_BACKOFF_S", description="first retry delay (doubles) without Retry-After"
    )
    judge_timeout_s: float = Field(default=300.0, gt=0, alias="EVALS_JUDGE_TIMEOUT_S")
    airflow_conn_id: str = Field(default="evals_db", alias="EVALS_CONN_ID")
    progress_interval_s: float = Field(default=2.0, alias="EVALS_PROGRESS_INTERVAL_S")
    api_nproc_default: int = Field(
        default=4, ge=1, alias="EVALS_API_NPROC_DEFAULT", description="served models without api_nproc"
    )
    endpoint_max_concurrency: int = Field(
        default=16,
        ge=1,
        alias="EVALS_ENDPOINT_MAX_CONCURRENCY",
        description="cap on concurrent requests to one endpoint (base URL), over all running runs",
    )
    endpoint_wait_s: float = Field(default=6 * 3600.0, ge=0, alias="EVALS_ENDPOINT_WAIT_S")
    endpoint_poll_s: float = Field(default=5.0, gt=0, alias="EVALS_ENDPOINT_POLL_S")
    # each inference engine runs in its own environment (vlmevals.serving.engines): its interpreter; unset:
    # .venv-engines/<engine>/bin/python when scripts/setup_engines.sh built it, else the engine's command on PATH
    engine_python_vllm: str | None = Field(default=None, alias="EVALS_ENGINE_PYTHON_VLLM")
    engine_python_sglang: str | None = Field(default=None, alias="EVALS_ENGINE_PYTHON_SGLANG")
    engine_python_lmdeploy: str | None = Field(default=None, alias="EVALS_ENGINE_PYTHON_LMDEPLOY")
    engine_python_transformers: str | None = Field(default=None, alias="EVALS_ENGINE_PYTHON_TRANSFORMERS")
    # managed model servers (vlmevals.serving.supervisor)
    serve_host: str = Field(
        default="127.0.0.1",
        alias="EVALS_SERVE_HOST",
        description="where engines listen: 0.0.0.0 when eval workers run on other machines than the GPU workers",
    )
    serve_advertise_host: str | None = Field(
        default=None,
        alias="EVALS_SERVE_ADVERTISE_HOST",
        description="the host name other workers reach an engine by (default: EVALS_SERVE_HOST, or this "
        "machine's name when that is 0.0.0.0)",
    )
    serve_api_nproc: int = Field(
        default=32,
        ge=1,
        alias="EVALS_SERVE_API_NPROC",
        description="concurrent requests of one run to a managed server (a model's api_nproc wins); capped by "
        "EVALS_ENDPOINT_MAX_CONCURRENCY over all runs on that server",
    )
    serve_max_concurrency: int = Field(
        default=64,
        ge=1,
        alias="EVALS_SERVE_MAX_CONCURRENCY",
        description="cap on concurrent requests to one managed server over all its runs (continuous batching)",
    )
    board_refresh_s: float = Field(
        default=0.5,
        ge=0,
        alias="EVALS_BOARD_REFRESH_S",
        description="an overall board is brought up to date at most this often per api-server process: a request "
        "within this many seconds of the last update gets that board (0: every request sees every write)",
    )
    server_poll_s: float = Field(default=2.0, gt=0, alias="EVALS_SERVER_POLL_S")
    server_stale_s: float = Field(
        default=120.0, gt=0, alias="EVALS_SERVER_STALE_S", description="a server without a heartbeat this long is dead"
    )
    exporters: str = Field(
        default="",
        alias="EVALS_EXPORTERS",
        description="experiment trackers every finished run is delivered to: 'mlflow,tensorboard,wandb' (empty: none)",
    )
    mlflow_tracking_uri: str | None = Field(default=None, alias="MLFLOW_TRACKING_URI")
    mlflow_experiment: str = Field(
        default="vlmevals/{task}", alias="EVALS_MLFLOW_EXPERIMENT", description="experiment of a run: {task}, {model}"
    )
    mlflow_checkpoint_experiment: str = Field(
        default="vlmevals/checkpoints/{model}",
        alias="EVALS_MLFLOW_CHECKPOINT_EXPERIMENT",
        description="experiment of a model's checkpoint curves (one tracker run per model and suite): {model}, {suite}",
    )
    tensorboard_dir: Path = Field(default=LOCAL_DIR / "tensorboard", alias="EVALS_TENSORBOARD_DIR")
    wandb_project: str = Field(default="vlmevals", alias="EVALS_WANDB_PROJECT", description="W&B project of eval runs")
    wandb_entity: str | None = Field(default=None, alias="EVALS_WANDB_ENTITY", description="W&B team or user")
    wandb_mode: Literal["online", "offline"] = Field(
        default="online",
        alias="EVALS_WANDB_MODE",
        description="online: to the W&B server (WANDB_API_KEY, WANDB_BASE_URL); offline: run folders to sync later",
    )
    wandb_dir: Path = Field(
        default=LOCAL_DIR / "wandb", alias="EVALS_WANDB_DIR", description="where wandb keeps its run folders"
    )
    public_url: str = Field(
        default="http://localhost:8080", alias="EVALS_PUBLIC_URL", description="Airflow's address, for links back"
    )
    export_max_attempts: int = Field(default=12, ge=1, alias="EVALS_EXPORT_MAX_ATTEMPTS")
    export_backoff_s: float = Field(
        default=10.0, gt=0, alias="EVALS_EXPORT_BACKOFF_S", description="first retry delay; doubles, up to 1 h"
    )
    _gpu: GpuSettings = PrivateAttr(default_factory=GpuSettings)

    @field_validator("database_url")
    @classmethod
    def _normalise_driver(cls, v: str) -> str:
        # Airflow connections and most docs say postgresql:// or postgres://; we run on psycopg 3.
        for prefix in ("postgres://", "postgresql://"):
            if v.startswith(prefix):
                return "postgresql+psycopg://" + v[len(prefix) :]
        return v

    @field_validator("exporters")
    @classmethod
    def _known_exporters(cls, v: str) -> str:
        names = [n.strip().lower() for n in v.split(",") if n.strip()]
        unknown = sorted(set(names) - set(EXPORTERS))
        if unknown:
            raise ValueError(
                f"EVALS_EXPORTERS names unknown exporter(s) {', '.join(unknown)}; use a comma-separated list of "
                f"{', '.join(EXPORTERS)}"
            )
        return ",".join(dict.fromkeys(names))

    @property
    def exporter_names(self) -> list[str]:
        return [n for n in self.exporters.split(",") if n]

    @model_validator(mode="after")
    def _default_outputs(self) -> Settings:
        if self.vlmeval_outputs is None:
            self.vlmeval_outputs = self.vlmeval_root / "outputs" if self.vlmeval_root else LOCAL_DIR / "outputs"
        return self

    @property
    def outputs_dir(self) -> Path:
        assert self.vlmeval_outputs is not None
        return self.vlmeval_outputs

    @property
    def gpu(self) -> GpuSettings:
        """The GPU section, read with the rest. Not a field: as one, an unrelated `GPU` variable in the environment
        would be parsed as this section's JSON and fail every settings read."""
        return self._gpu


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once; `get_settings.cache_clear()` makes the next call read them again."""
    return Settings()
