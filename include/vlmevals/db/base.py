"""The declarative base and the constants our tables' constraints are written with."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

# the partial unique index that keeps one active, unforced run per (task, model); its name identifies the violation
ONE_ACTIVE_INDEX = "uq_eval_runs_one_active"
MODEL_TYPES = ("vlm", "llm")
LAUNCH_MODES = ("single", "torchrun")
SLUG_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,127}$"
CHECKPOINT_LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
# eval_runs.sample_limit, generated from the run option `limit` (validated as an int >= 1 when stored); capped at
# the integer range, so an absurd limit cannot fail an insert (such a limit covers any dataset anyway)
SAMPLE_LIMIT_SQL = (
    "CASE WHEN jsonb_typeof(options -> 'limit') = 'number' "
    "THEN least((options ->> 'limit')::numeric, 2147483647)::integer END"
)


def in_list(col: str, values: tuple[str, ...]) -> str:
    return f"{col} IN ({', '.join(repr(str(v)) for v in values)})"  # str(): an enum member's repr is not SQL


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONB}
