"""The judge cache: one stored answer per judge request (hash of model, messages and sampling parameters), in
our database so every worker's scoring step shares it (vlmevals.runs.judge_cache reads and writes it)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, DateTime, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from vlmevals.db.base import Base


class JudgeCacheEntry(Base):
    """A judge's answer (the whole chat.completion body) to one request; `hits`: answers served from it."""

    __tablename__ = "judge_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    judge_model: Mapped[str] = mapped_column(String(256))
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    hits: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
