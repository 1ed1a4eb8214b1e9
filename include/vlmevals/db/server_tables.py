"""Model servers: an inference engine the service runs for one model (at one checkpoint) and evaluates against.

At most one live server per (model, checkpoint) is a database rule (a partial unique index), as one active run per
pair is: every eval run that needs the weights joins the live server instead of loading them again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
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
from sqlalchemy.orm import Mapped, mapped_column

from vlmevals.core.vocabulary import LIVE_SERVER_STATES, SERVER_STATES
from vlmevals.db.base import Base, in_list

ONE_LIVE_SERVER_INDEX = "uq_model_servers_one_live"


class ModelServer(Base):
    """One engine process's life: requested by the first run that needs it, started and stopped by its
    `model_server` DAG run, never reused once over (a new one gets a new row)."""

    __tablename__ = "model_servers"
    __table_args__ = (
        CheckConstraint(in_list("state", SERVER_STATES), name="ck_model_servers_state"),
        Index(
            ONE_LIVE_SERVER_INDEX,
            "model_id",
            text("coalesce(checkpoint_id, 0)"),
            unique=True,
            postgresql_where=text(in_list("state", LIVE_SERVER_STATES)),
        ),
        Index("ix_model_servers_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    checkpoint_id: Mapped[int | None] = mapped_column(ForeignKey("checkpoints.id", ondelete="RESTRICT"))
    state: Mapped[str] = mapped_column(String(16), server_default="starting")
    engine: Mapped[str] = mapped_column(String(32))
    args: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    gpus: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    # seconds without a queued or running run before it stops (0: as soon as its runs are over)
    linger_s: Mapped[float] = mapped_column(Float)
    startup_timeout_s: Mapped[float] = mapped_column(Float)
    weights: Mapped[str | None] = mapped_column(Text)
    served_model_name: Mapped[str] = mapped_column(String(256))
    engine_version: Mapped[str | None] = mapped_column(String(64))
    command: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(256))
    port: Mapped[int | None] = mapped_column(Integer)
    base_url: Mapped[str | None] = mapped_column(String(512))
    worker: Mapped[str | None] = mapped_column(String(256))  # the node whose process group the engine is
    pid: Mapped[int | None] = mapped_column(Integer)
    devices: Mapped[str | None] = mapped_column(String(64))  # CUDA_VISIBLE_DEVICES of its lease ('' on CPU)
    log_path: Mapped[str | None] = mapped_column(Text)
    loads: Mapped[int] = mapped_column(Integer, server_default=text("0"))  # engine starts: each loads the weights
    dag_id: Mapped[str | None] = mapped_column(String(250))
    dag_run_id: Mapped[str | None] = mapped_column(String(250))
    requested_by_run_id: Mapped[int | None] = mapped_column(BigInteger)
    stop_requested_by: Mapped[str | None] = mapped_column(String(256))
    reason: Mapped[str | None] = mapped_column(Text)  # why it stopped or failed
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    ready_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    idle_since: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
