"""The judge cache: identical judge requests (same model, messages and sampling parameters) answered once.

In our database, not a worker's disk: a rerun, a nightly re-evaluation with unchanged predictions or a re-judge
with the same judge on any worker finds the answer. Only well-formed answers with content are stored (a failure
must be asked again). Works in the caller's session; the judge gateway gives each request its own short one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from vlmevals.db.models import JudgeCacheEntry

# request fields that change how an answer is delivered, not what it says
NOT_KEYED = frozenset({"stream", "stream_options", "user", "timeout"})


def request_key(body: dict[str, Any]) -> str:
    """sha256 of the request's model, messages and sampling parameters (canonical JSON)."""
    keyed = {k: v for k, v in body.items() if k not in NOT_KEYED}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def lookup(session: Session, key: str) -> dict[str, Any] | None:
    """The stored answer for `key` (counting the hit), or None."""
    stmt = (
        update(JudgeCacheEntry)
        .where(JudgeCacheEntry.key == key)
        .values(hits=JudgeCacheEntry.hits + 1)
        .returning(JudgeCacheEntry.response)
    )
    got = session.execute(stmt).scalar_one_or_none()
    return dict(got) if got is not None else None


def store(session: Session, key: str, judge_model: str, response: dict[str, Any]) -> None:
    """Keep an answer; the first writer of a key wins (two workers asking at once store one)."""
    stmt = insert(JudgeCacheEntry).values(key=key, judge_model=judge_model[:256], response=response)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))
