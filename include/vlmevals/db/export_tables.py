"""The export outbox: what still has to reach the experiment trackers, written in the run's own transaction."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from vlmevals.db.base import Base, in_list

EXPORT_STATES = ("pending", "delivered", "failed")


class ExportOutbox(Base):
    """One eval run to deliver to one exporter; `failed` only once its attempts are spent (re-queued by
    `vlmevals exports retry`)."""

    __tablename__ = "export_outbox"
    __table_args__ = (
        CheckConstraint(in_list("state", EXPORT_STATES), name="ck_export_outbox_state"),
        CheckConstraint("attempts >= 0", name="ck_export_outbox_attempts"),
        UniqueConstraint("run_id", "exporter", name="uq_export_outbox_run_exporter"),
        Index("ix_export_outbox_due", "next_attempt_at", postgresql_where=text("state = 'pending'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("eval_runs.id", ondelete="CASCADE"))
    exporter: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # where the result landed: the MLflow run id, the TensorBoard event file
    tracker_ref: Mapped[str | None] = mapped_column(Text)
