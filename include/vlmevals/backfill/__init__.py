"""Backfill of results already in VLMEvalKit work dirs (see importer.sync_outputs)."""

from vlmevals.backfill.importer import SyncReport, sync_outputs

__all__ = ["SyncReport", "sync_outputs"]
