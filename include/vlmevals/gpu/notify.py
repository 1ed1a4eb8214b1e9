"""Waking lease waiters: every release NOTIFYs `gpu_leases`; a waiter LISTENs on a raw psycopg connection, so a
freed GPU is taken at once instead of at the next poll."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, func, select

CHANNEL = "gpu_leases"


def notify(conn: Connection, host: str) -> None:
    """Tell the waiters of `host` that devices were freed (delivered when `conn`'s transaction commits)."""
    conn.execute(select(func.pg_notify(CHANNEL, host)))


@contextlib.contextmanager
def listening(engine: Engine) -> Iterator[Any | None]:
    """A raw psycopg connection listening on the release channel (None if the driver cannot LISTEN)."""
    raw = engine.raw_connection()
    dbapi: Any = raw.driver_connection
    try:
        try:
            dbapi.autocommit = True
            dbapi.execute(f"LISTEN {CHANNEL}")
        except Exception:  # not psycopg 3: fall back to polling
            dbapi = None
        yield dbapi
    finally:
        with contextlib.suppress(Exception):
            if raw.driver_connection is not None:
                conn: Any = raw.driver_connection
                conn.execute(f"UNLISTEN {CHANNEL}")
                conn.autocommit = False
        raw.close()


def wait_for_release(listener: Any | None, timeout_s: float) -> None:
    """Sleep until a release is notified or `timeout_s` passes (without a listener: a short sleep)."""
    if listener is None or timeout_s <= 0:
        time.sleep(max(0.0, min(timeout_s, 1.0)))
        return
    for _ in listener.notifies(timeout=timeout_s, stop_after=1):
        break
