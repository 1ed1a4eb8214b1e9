"""ORM models of our own tables (Airflow's metadata DB is never touched from here).

The Alembic migrations in sql/ are the source of truth for the schema; these mappings mirror them and a
test checks that they agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

RUN_STATUSES = ("queued", "running", "completed", "failed", "cancelled")
ACTIVE_STATUSES = ("queued", "running")
# the partial unique index that keeps one active, unforced run per (task, model); its name identifies the violation
ONE_ACTIVE_INDEX = "uq_eval_runs_one_active"
TRIGGER_SOURCES = ("ui", "rest", "plugin", "schedule", "backfill", "cli")
MODEL_TYPES = ("vlm", "llm")
LAUNCH_MODES = ("single", "torchrun")
SLUG_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,127}$"


def _in(col: str, values: tuple[str, ...]) -> str:
    return f"{col} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONB}


class Task(Base):
    """A benchmark: which VLMEvalKit dataset to run and which metric ranks models."""

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(f"name ~ '{SLUG_PATTERN}'", name="ck_tasks_name_slug"),
        CheckConstraint("metric_scale > 0", name="ck_tasks_metric_scale_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    display_name: Mapped[str] = mapped_column(String(256))
    vlmeval_data: Mapped[str] = mapped_column(String(256))
    vlmeval_dataset_class: Mapped[str | None] = mapped_column(String(128))
    primary_metric_suffix: Mapped[str] = mapped_column(String(64), server_default="_acc.csv")
    primary_metric_key: Mapped[str] = mapped_column(String(256), server_default="Overall")
    higher_is_better: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    metric_scale: Mapped[float] = mapped_column(Float, server_default=text("1.0"))
    description: Mapped[str] = mapped_column(Text, server_default="")
    regression_tolerance: Mapped[float] = mapped_column(Float, server_default=text("0.01"))
    # a dataset of the task's own (not VLMEvalKit's registry): where to download it and its md5
    dataset_url: Mapped[str | None] = mapped_column(String(2048))
    dataset_md5: Mapped[str | None] = mapped_column(String(32))
    # VLMEvalKit scores the dataset with an LLM judge (NULL: not checked yet) and its default judge
    needs_llm_judge: Mapped[bool | None] = mapped_column(Boolean)
    default_judge: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    runs: Mapped[list[EvalRun]] = relationship(back_populates="task")


class Model(Base):
    """A model and what it takes to run it: a VLMEvalKit registry name, a local spec or an endpoint."""

    __tablename__ = "models"
    __table_args__ = (
        CheckConstraint(f"name ~ '{SLUG_PATTERN}'", name="ck_models_name_slug"),
        CheckConstraint(_in("model_type", MODEL_TYPES), name="ck_models_model_type"),
        CheckConstraint(_in("launch_mode", LAUNCH_MODES), name="ck_models_launch_mode"),
        CheckConstraint("gpus >= 0", name="ck_models_gpus_nonneg"),
        CheckConstraint(
            "NOT (model_spec IS NOT NULL AND endpoint_base_url IS NOT NULL)",
            name="ck_models_spec_xor_endpoint",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    display_name: Mapped[str] = mapped_column(String(256))
    vlmeval_model: Mapped[str] = mapped_column(String(256))
    model_type: Mapped[str] = mapped_column(String(8), server_default="vlm")
    params_b: Mapped[float | None] = mapped_column(Float)
    model_spec: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    endpoint_base_url: Mapped[str | None] = mapped_column(String(512))
    endpoint_key_env: Mapped[str | None] = mapped_column(String(128))
    gpus: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    launch_mode: Mapped[str] = mapped_column(String(16), server_default="single")
    revision: Mapped[str | None] = mapped_column(String(256))  # Hub weights: branch, tag or commit to pin
    description: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    runs: Mapped[list[EvalRun]] = relationship(back_populates="model")


class EvalRun(Base):
    """One (task, model) evaluation; one Airflow DAG run of `eval_run`."""

    __tablename__ = "eval_runs"
    __table_args__ = (
        CheckConstraint(_in("status", RUN_STATUSES), name="ck_eval_runs_status"),
        CheckConstraint(_in("triggered_by", TRIGGER_SOURCES), name="ck_eval_runs_triggered_by"),
        CheckConstraint(
            "progress_done >= 0 AND (progress_total IS NULL OR progress_done <= progress_total)",
            name="ck_eval_runs_progress",
        ),
        CheckConstraint("status <> 'completed' OR finished_at IS NOT NULL", name="ck_eval_runs_completed_has_finish"),
        Index("ix_eval_runs_task_created", "task_id", "created_at"),
        Index("ix_eval_runs_task_model_status", "task_id", "model_id", "status"),
        Index(
            "ix_eval_runs_leaderboard",
            "task_id",
            "model_id",
            "primary_metric",
            postgresql_where=text("status = 'completed'"),
        ),
        Index("ix_eval_runs_active", "status", postgresql_where=text("status IN ('queued', 'running')")),
        Index("uq_eval_runs_source_path", "source_path", unique=True, postgresql_where=text("source_path IS NOT NULL")),
        Index("ix_eval_runs_pair_finished", "task_id", "model_id", "finished_at"),
        Index(
            ONE_ACTIVE_INDEX,
            "task_id",
            "model_id",
            unique=True,
            postgresql_where=text("status IN ('queued', 'running') AND NOT forced"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="RESTRICT"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(16), server_default="queued")
    dag_id: Mapped[str | None] = mapped_column(String(250))
    dag_run_id: Mapped[str | None] = mapped_column(String(250), unique=True)
    triggered_by: Mapped[str] = mapped_column(String(16), server_default="rest")
    triggered_by_user: Mapped[str | None] = mapped_column(String(256))
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    primary_metric: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    progress_done: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    progress_total: Mapped[int | None] = mapped_column(Integer)
    artifacts_dir: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    vlmeval_version: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # started with force=true: exempt from the one-active-run-per-pair index
    forced: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # reproducibility (what determines the result) and its hash, for skip-if-unchanged and drift marks
    fingerprint: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    fingerprint_hash: Mapped[str | None] = mapped_column(String(64))
    # per-sample summary: failed samples (API/judge errors) are counted apart from wrong ones
    samples_total: Mapped[int | None] = mapped_column(Integer)
    samples_failed: Mapped[int | None] = mapped_column(Integer)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    # nightly regression check against the previous completed run of the same pair
    regression: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    regression_detail: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    baseline_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("eval_runs.id", ondelete="SET NULL", name="fk_eval_runs_baseline")
    )
    # backfill: the result folder a run was read from (one run per source)
    source_path: Mapped[str | None] = mapped_column(Text)
    source_mtime_ns: Mapped[int | None] = mapped_column(BigInteger)

    task: Mapped[Task] = relationship(back_populates="runs")
    model: Mapped[Model] = relationship(back_populates="runs", foreign_keys=[model_id])
    events: Mapped[list[EvalRunEvent]] = relationship(back_populates="run", order_by="EvalRunEvent.id")


class EvalRunEvent(Base):
    """Append-only history of a run's status changes, so every result (and failure) can be explained."""

    __tablename__ = "eval_run_events"
    __table_args__ = (Index("ix_eval_run_events_run", "run_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("eval_runs.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    run: Mapped[EvalRun] = relationship(back_populates="events")


class EvalSample(Base):
    """One sample's outcome in one run (from VLMEvalKit's per-sample result file)."""

    __tablename__ = "eval_samples"
    __table_args__ = (Index("ix_eval_samples_run_category", "run_id", "category"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("eval_runs.id", ondelete="CASCADE"), primary_key=True)
    sample_index: Mapped[str] = mapped_column(String(128), primary_key=True)
    category: Mapped[str | None] = mapped_column(String(256))
    question: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    prediction: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)  # 1/0 hit, or a partial score
    failed: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))  # model/judge error, not wrong
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))


class Enrolment(Base):
    """A (task, model) pair, a whole task (model NULL) or a whole model (task NULL) in nightly re-evaluation."""

    __tablename__ = "enrolments"
    __table_args__ = (
        CheckConstraint("task_id IS NOT NULL OR model_id IS NOT NULL", name="ck_enrolments_target"),
        Index("uq_enrolments_target", text("coalesce(task_id, 0)"), text("coalesce(model_id, 0)"), unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_by: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class GpuLease(Base):
    """Which inference holds which GPU of which worker; a stale heartbeat frees the device."""

    __tablename__ = "gpu_leases"

    host: Mapped[str] = mapped_column(String(256), primary_key=True)
    device: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("eval_runs.id", ondelete="SET NULL"))
    holder: Mapped[str | None] = mapped_column(String(512))  # dag_run/task/try that holds it
    pid: Mapped[int | None] = mapped_column(Integer)
    acquired_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Suite(Base):
    """A named, ordered set of tasks (optionally weighted): the columns of an overall board."""

    __tablename__ = "suites"
    __table_args__ = (CheckConstraint(f"name ~ '{SLUG_PATTERN}'", name="ck_suites_name_slug"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    display_name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    members: Mapped[list[SuiteTask]] = relationship(
        back_populates="suite", order_by="SuiteTask.position", cascade="all, delete-orphan"
    )


class SuiteTask(Base):
    """One task of a suite, its place in the suite's order and its weight in the suite's average."""

    __tablename__ = "suite_tasks"
    __table_args__ = (
        CheckConstraint("weight > 0", name="ck_suite_tasks_weight_positive"),
        CheckConstraint("position >= 0", name="ck_suite_tasks_position_nonneg"),
        Index("uq_suite_tasks_position", "suite_id", "position", unique=True),
    )

    suite_id: Mapped[int] = mapped_column(ForeignKey("suites.id", ondelete="CASCADE"), primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    weight: Mapped[float] = mapped_column(Float, server_default=text("1.0"))

    suite: Mapped[Suite] = relationship(back_populates="members")
    task: Mapped[Task] = relationship()
