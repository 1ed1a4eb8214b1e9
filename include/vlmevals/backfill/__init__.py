"""Backfill of results already in VLMEvalKit work dirs (see importer.sync_outputs)."""

from vlmevals.backfill.importer import sync_outputs
from vlmevals.backfill.report import SyncReport

__all__ = ["SyncReport", "sync_outputs"]
