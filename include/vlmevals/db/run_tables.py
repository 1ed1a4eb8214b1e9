"""Run tables: eval runs, their history and per-sample outcomes, and GPU leases."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
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
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vlmevals.core.vocabulary import ACTIVE_STATUSES, RUN_STATUSES, TRIGGER_SOURCES, RunStatus, TriggeredBy
from vlmevals.db.base import ONE_ACTIVE_INDEX, SAMPLE_LIMIT_SQL, Base, in_list

if TYPE_CHECKING:
    from vlmevals.db.catalogue_tables import Checkpoint, Model, Task


class EvalRun(Base):
    """One (task, model) evaluation; one Airflow DAG run of `eval_run`."""

    __tablename__ = "eval_runs"
    __table_args__ = (
        CheckConstraint(in_list("status", RUN_STATUSES), name="ck_eval_runs_status"),
        CheckConstraint(in_list("triggered_by", TRIGGER_SOURCES), name="ck_eval_runs_triggered_by"),
        CheckConstraint(
            "progress_done >= 0 AND (progress_total IS NULL OR progress_done <= progress_total)",
            name="ck_eval_runs_progress",
        ),
        CheckConstraint(
            f"status <> '{RunStatus.COMPLETED}' OR finished_at IS NOT NULL", name="ck_eval_runs_completed_has_finish"
        ),
        Index("ix_eval_runs_task_created", "task_id", "created_at"),
        Index("ix_eval_runs_task_model_status", "task_id", "model_id", "status"),
        Index(
            "ix_eval_runs_leaderboard",
            "task_id",
            "model_id",
            "primary_metric",
            postgresql_where=text(f"status = '{RunStatus.COMPLETED}'"),
        ),
        Index("ix_eval_runs_active", "status", postgresql_where=text(in_list("status", ACTIVE_STATUSES))),
        Index("uq_eval_runs_source_path", "source_path", unique=True, postgresql_where=text("source_path IS NOT NULL")),
        Index("ix_eval_runs_pair_finished", "task_id", "model_id", "finished_at"),
        Index("ix_eval_runs_checkpoint", "checkpoint_id"),
        Index(
            ONE_ACTIVE_INDEX,
            "task_id",
            "model_id",
            text("coalesce(checkpoint_id, 0)"),
            unique=True,
            postgresql_where=text(f"{in_list('status', ACTIVE_STATUSES)} AND NOT forced"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="RESTRICT"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(16), server_default=RunStatus.QUEUED.value)
    dag_id: Mapped[str | None] = mapped_column(String(250))
    dag_run_id: Mapped[str | None] = mapped_column(String(250), unique=True)
    triggered_by: Mapped[str] = mapped_column(String(16), server_default=TriggeredBy.AIRFLOW_REST.value)
    triggered_by_user: Mapped[str | None] = mapped_column(String(256))
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    # options.limit as a column (generated, so no write path can forget it): NULL = a full-dataset run, the
    # only kind boards and regression baselines count (results/counted.py)
    sample_limit: Mapped[int | None] = mapped_column(Integer, Computed(SAMPLE_LIMIT_SQL, persisted=True))
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
    # the model checkpoint this run evaluated (NULL: the model as registered)
    checkpoint_id: Mapped[int | None] = mapped_column(
        ForeignKey("checkpoints.id", ondelete="RESTRICT", name="fk_eval_runs_checkpoint")
    )

    task: Mapped[Task] = relationship(back_populates="runs")
    model: Mapped[Model] = relationship(back_populates="runs", foreign_keys=[model_id])
    events: Mapped[list[EvalRunEvent]] = relationship(back_populates="run", order_by="EvalRunEvent.id")
    checkpoint: Mapped[Checkpoint | None] = relationship(lazy="joined")


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
