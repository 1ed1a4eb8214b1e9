"""Holding Airflow's scheduler inside its critical section, deterministically, so a test can SIGKILL it there.

The scheduler queues task instances inside one transaction that holds the row locks on `slot_pool` (and, on
PostgreSQL, the critical-section advisory lock); its UPDATE of the picked task instances to `queued` is the last
statement of that transaction. A trigger on that UPDATE makes it wait for an advisory lock the test holds: the
scheduler is then provably inside its critical section, and `pg_locks` shows which backend it is.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

GATE = 424_242
"""The advisory lock key the trigger waits on (shared) while the test holds it (exclusive)."""

_INSTALL = f"""
CREATE OR REPLACE FUNCTION evals_test_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_advisory_xact_lock_shared({GATE}); RETURN NEW; END $$;
DROP TRIGGER IF EXISTS evals_test_gate ON task_instance;
CREATE TRIGGER evals_test_gate BEFORE UPDATE OF state ON task_instance FOR EACH ROW
WHEN (OLD.state = 'scheduled' AND NEW.state = 'queued') EXECUTE FUNCTION evals_test_gate();
"""
# Opening the gate replaces the function's body only: dropping the trigger needs an ACCESS EXCLUSIVE lock on
# task_instance, which would queue behind the killed scheduler's open transaction (and every reader behind it).
_OPEN = "CREATE OR REPLACE FUNCTION evals_test_gate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
_DROP = "DROP TRIGGER IF EXISTS evals_test_gate ON task_instance; DROP FUNCTION IF EXISTS evals_test_gate()"

# a backend waiting at the gate while it holds the locks of the scheduler's critical section
_WAITING_INSIDE = f"""
SELECT w.pid FROM pg_locks w
JOIN pg_locks p ON p.pid = w.pid AND p.granted AND p.relation = 'slot_pool'::regclass
WHERE w.locktype = 'advisory' AND w.objid = {GATE} AND NOT w.granted
"""
_SESSION = """
SELECT a.state, EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.granted
                        AND l.relation = 'slot_pool'::regclass)
FROM pg_stat_activity a WHERE a.pid = %s
"""


def metadata_dsn() -> str:
    """Airflow's metadata database (the tests' own), as a libpq URL."""
    url = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    return "postgresql://" + url.split("://", 1)[1]


@dataclass
class Gate:
    conn: psycopg.Connection

    def backend_inside(self, timeout_s: float = 180) -> int:
        """The pid of the scheduler's backend once it waits at the gate inside its critical section."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            row = self.conn.execute(_WAITING_INSIDE).fetchone()
            if row:
                return int(row[0])
            time.sleep(0.2)
        raise AssertionError("the scheduler never reached its critical section with a task to queue")

    def session(self, backend: int) -> tuple[str, bool] | None:
        """(state, holds the slot_pool locks) of a backend; None once PostgreSQL has ended it."""
        row = self.conn.execute(_SESSION, (backend,)).fetchone()
        return (str(row[0]), bool(row[1])) if row else None

    def open(self) -> None:
        self.conn.execute(_OPEN)
        self.conn.execute("SELECT pg_advisory_unlock(%s)", (GATE,))


@contextmanager
def scheduler_gate() -> Iterator[Gate]:
    """Closed on entry: the next task instance the scheduler queues holds it inside its critical section."""
    with psycopg.connect(metadata_dsn(), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (GATE,))
        conn.execute(_INSTALL)
        try:
            yield Gate(conn)
        finally:
            conn.execute(_OPEN)
            conn.execute("SELECT pg_advisory_unlock_all()")
            conn.execute("SET lock_timeout = '30s'")
            # an orphaned transaction still holding task_instance would block the drop: the no-op trigger stays
            with contextlib.suppress(psycopg.errors.LockNotAvailable):
                conn.execute(_DROP)
