"""ORM models of our own tables (Airflow's metadata DB is never touched from here): the one import point.

The Alembic migrations in sql/ are the source of truth for the schema; these mappings mirror them and a
test checks that they agree. Importing this module registers every table on `Base.metadata`.
"""

from __future__ import annotations

from vlmevals.db.base import (
    CHECKPOINT_LABEL_PATTERN,
    LAUNCH_MODES,
    MODEL_TYPES,
    ONE_ACTIVE_INDEX,
    SLUG_PATTERN,
    Base,
)
from vlmevals.db.board_tables import ALL_CHECKPOINTS, BOARD_PICKS, BoardEntry, BoardStamp
from vlmevals.db.export_tables import EXPORT_STATES, ExportOutbox
from vlmevals.db.judge_tables import JudgeCacheEntry
from vlmevals.db.server_tables import ONE_LIVE_SERVER_INDEX, ModelServer
from vlmevals.db.tables import (
    Checkpoint,
    Enrolment,
    EvalRun,
    EvalRunEvent,
    EvalSample,
    GpuLease,
    Model,
    Suite,
    SuiteTask,
    Task,
)

__all__ = [
    "ALL_CHECKPOINTS",
    "BOARD_PICKS",
    "CHECKPOINT_LABEL_PATTERN",
    "EXPORT_STATES",
    "LAUNCH_MODES",
    "MODEL_TYPES",
    "ONE_ACTIVE_INDEX",
    "ONE_LIVE_SERVER_INDEX",
    "SLUG_PATTERN",
    "Base",
    "BoardEntry",
    "BoardStamp",
    "Checkpoint",
    "Enrolment",
    "EvalRun",
    "EvalRunEvent",
    "EvalSample",
    "ExportOutbox",
    "GpuLease",
    "JudgeCacheEntry",
    "Model",
    "ModelServer",
    "Suite",
    "SuiteTask",
    "Task",
]
