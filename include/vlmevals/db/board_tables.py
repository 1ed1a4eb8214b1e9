"""What the boards rank, kept beside the runs: one row per (task, model, checkpoint grain, pick, scope), written in
the transaction that changes a run (runs.board_entries), so a board reads its page by index instead of choosing
among every run of the task."""

from __future__ import annotations

import datetime as dt

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
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from vlmevals.db.base import Base

BOARD_PICKS = ("best", "latest")
ALL_CHECKPOINTS = 0  # checkpoint_key of a pair's entry over all its runs (the task and overall boards)


class BoardEntry(Base):
    """The run a board shows for a (task, model): `checkpoint_key` 0 over all of the pair's runs (task and overall
    boards, both picks, both scopes), a checkpoint's id for the latest full-dataset run at that checkpoint (the
    checkpoint scores). `rank_score` is the score in the board's order (higher first: negated for a
    lower-is-better task), so one index serves every task's board."""

    __tablename__ = "board_entries"
    __table_args__ = (
        CheckConstraint("pick IN ('best', 'latest')", name="ck_board_entries_pick"),
        Index(
            "ix_board_entries_order",
            "task_id",
            "pick",
            "include_limited",
            "checkpoint_key",
            text("rank_score DESC"),
        ),
        Index("ix_board_entries_model", "model_id", "checkpoint_key"),
        Index("ix_board_entries_run", "run_id"),
    )

    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    checkpoint_key: Mapped[int] = mapped_column(Integer, primary_key=True)
    pick: Mapped[str] = mapped_column(String(8), primary_key=True)
    include_limited: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("eval_runs.id", ondelete="CASCADE"))
    rank_score: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    sample_limit: Mapped[int | None] = mapped_column(Integer)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    samples_total: Mapped[int | None] = mapped_column(Integer)
    samples_failed: Mapped[int | None] = mapped_column(Integer)


class BoardStamp(Base):
    """A task's board version, moved with every change of its entries (or of what its pages show of a run): the
    page caches are valid per task (per suite: its tasks'), not until any run anywhere changes."""

    __tablename__ = "board_stamps"

    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
