"""The private PostgreSQL (the default set-up's, and the tests' own) ends abandoned transactions."""

from __future__ import annotations

import os
import time

import psycopg
import pytest

pytestmark = pytest.mark.integration


def test_a_transaction_left_idle_is_ended_by_the_server(pg_server: str) -> None:
    if os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("TEST_DATABASE_URL points at a server these tests did not start")
    dsn = "postgresql://" + pg_server.split("://", 1)[1]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone() == ("5min",)
        # the server enforces it: a shorter one for this session ends the session left idle inside a transaction
        conn.execute("SET idle_in_transaction_session_timeout = '200ms'")
        conn.execute("SELECT 1")
        time.sleep(1.0)
        with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
            conn.execute("SELECT 1")
