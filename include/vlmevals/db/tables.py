"""Our ORM tables in one module: the catalogue (tasks, models, checkpoints, suites, enrolments) and the runs (eval
runs, their history and per-sample outcomes, GPU leases), which refer to each other.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

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
from vlmevals.db.base import (
    CHECKPOINT_LABEL_PATTERN,
    LAUNCH_MODES,
    MODEL_TYPES,
    ONE_ACTIVE_INDEX,
    SAMPLE_LIMIT_SQL,
    SLUG_PATTERN,
    Base,
    in_list,
)


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
        CheckConstraint(in_list("model_type", MODEL_TYPES), name="ck_models_model_type"),
        CheckConstraint(in_list("launch_mode", LAUNCH_MODES), name="ck_models_launch_mode"),
        CheckConstraint("gpus >= 0", name="ck_models_gpus_nonneg"),
        CheckConstraint("api_nproc IS NULL OR api_nproc > 0", name="ck_models_api_nproc_positive"),
        CheckConstraint(
            "NOT (model_spec IS NOT NULL AND endpoint_base_url IS NOT NULL)",
            name="ck_models_spec_xor_endpoint",
        ),
        CheckConstraint(
            "NOT (serve IS NOT NULL AND endpoint_base_url IS NOT NULL)", name="ck_models_serve_no_endpoint"
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
    # served models: concurrent requests VLMEvalKit sends (--api-nproc); NULL means the service default
    api_nproc: Mapped[int | None] = mapped_column(Integer)
    # managed serving: {engine, args, gpus, startup_timeout_s, idle_timeout_s} (vlmevals.catalogue.schemas.serve)
    serve: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    # the suite a new checkpoint of this model is evaluated on
    suite_id: Mapped[int | None] = mapped_column(ForeignKey("suites.id", ondelete="SET NULL", name="fk_models_suite"))
    description: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    runs: Mapped[list[EvalRun]] = relationship(back_populates="model")
    suite: Mapped[Suite | None] = relationship(lazy="joined")


class Checkpoint(Base):
    """One saved state of a model during training: evaluated on the model's suite when registered."""

    __tablename__ = "checkpoints"
    __table_args__ = (
        CheckConstraint("step IS NOT NULL OR label IS NOT NULL", name="ck_checkpoints_step_or_label"),
        CheckConstraint("step IS NULL OR step >= 0", name="ck_checkpoints_step_nonneg"),
        CheckConstraint(f"label IS NULL OR label ~ '{CHECKPOINT_LABEL_PATTERN}'", name="ck_checkpoints_label"),
        CheckConstraint("num_nonnulls(weights_path, hub_revision) = 1", name="ck_checkpoints_one_source"),
        Index("uq_checkpoints_model_step", "model_id", "step", unique=True, postgresql_where=text("step IS NOT NULL")),
        Index(
            "uq_checkpoints_model_label", "model_id", "label", unique=True, postgresql_where=text("label IS NOT NULL")
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    step: Mapped[int | None] = mapped_column(BigInteger)
    label: Mapped[str | None] = mapped_column(String(128))
    weights_path: Mapped[str | None] = mapped_column(Text)
    hub_revision: Mapped[str | None] = mapped_column(String(256))
    created_by: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # the training run in the experiment trackers: its eval scores are logged there at `step`
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    tensorboard_dir: Mapped[str | None] = mapped_column(Text)
    wandb_run_path: Mapped[str | None] = mapped_column(String(256))  # entity/project/run_id

    model: Mapped[Model] = relationship()


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


class Enrolment(Base):
    """What the nightly re-evaluates: a (task, model) pair, a whole task or model, or a suite (with or without a
    model)."""

    __tablename__ = "enrolments"
    __table_args__ = (
        CheckConstraint(
            "task_id IS NOT NULL OR model_id IS NOT NULL OR suite_id IS NOT NULL", name="ck_enrolments_target"
        ),
        CheckConstraint("suite_id IS NULL OR task_id IS NULL", name="ck_enrolments_suite_no_task"),
        Index(
            "uq_enrolments_target",
            text("coalesce(task_id, 0)"),
            text("coalesce(model_id, 0)"),
            text("coalesce(suite_id, 0)"),
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    suite_id: Mapped[int | None] = mapped_column(
        ForeignKey("suites.id", ondelete="CASCADE", name="fk_enrolments_suite")
    )
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_by: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


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
    # a re-judged run: the run whose predictions it scored again with another judge (no inference of its own)
    source_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("eval_runs.id", ondelete="SET NULL", name="fk_eval_runs_source_run")
    )
    # samples whose judge call failed for good (a subset of samples_failed): the judge's fault, not the model's
    samples_judge_failed: Mapped[int | None] = mapped_column(Integer)

    task: Mapped[Task] = relationship(back_populates="runs")
    model: Mapped[Model] = relationship(back_populates="runs", foreign_keys=[model_id])
    events: Mapped[list[EvalRunEvent]] = relationship(back_populates="run", order_by="EvalRunEvent.id")
    # recorded together with other runs by a suite or checkpoint fan-out: their model server stops when they are over
    batched: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # the model server this run's inference is sent to (a served model: vlmevals.serving)
    server_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("model_servers.id", ondelete="SET NULL", name="fk_eval_runs_server")
    )

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
    judge_failed: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))  # the judge's part of failed
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
