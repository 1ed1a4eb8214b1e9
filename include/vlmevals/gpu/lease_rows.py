"""The statements on `gpu_leases` (`GpuLease`): one row per (host, device), its holder columns set while leased.

Taking k devices is one `UPDATE … FROM (SELECT … LIMIT k FOR UPDATE SKIP LOCKED)`: two takers never get one
device, and neither waits on rows the other has locked. Every statement that frees devices NOTIFYs waiters.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Row, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from vlmevals.db.models import GpuLease
from vlmevals.gpu.notify import notify

FREED: dict[str, Any] = {"holder": None, "run_id": None, "pid": None, "acquired_at": None, "heartbeat_at": None}


def ensure_devices(engine: Engine, host: str, devices: tuple[int, ...]) -> None:
    """One row per device of this host (idempotent)."""
    if not devices:
        return
    with engine.begin() as conn:
        rows = [{"host": host, "device": d} for d in devices]
        conn.execute(insert(GpuLease).values(rows).on_conflict_do_nothing())


def try_acquire(
    engine: Engine, host: str, devices: tuple[int, ...], k: int, *, holder: str, run_id: int | None
) -> tuple[int, ...] | None:
    """Take k free devices in one transaction, or none at all."""
    free = (
        select(GpuLease.host, GpuLease.device)
        .where(GpuLease.host == host, GpuLease.device.in_(devices), GpuLease.holder.is_(None))
        .order_by(GpuLease.device)
        .limit(k)
        .with_for_update(skip_locked=True)
        .cte("free")
    )
    take = (
        update(GpuLease)
        .where(GpuLease.host == free.c.host, GpuLease.device == free.c.device)
        .values(holder=holder, run_id=run_id, pid=os.getpid(), acquired_at=func.now(), heartbeat_at=func.now())
        .returning(GpuLease.device)
    )
    with engine.connect() as conn:
        got = conn.execute(take).scalars().all()
        if len(got) < k:
            conn.rollback()
            return None
        conn.commit()
    return tuple(sorted(got))


def heartbeat(engine: Engine, host: str, devices: tuple[int, ...], holder: str) -> int:
    """Refresh the holder's devices, re-taking any a reclaimer freed; returns how many it holds."""
    beat = (
        update(GpuLease)
        .where(
            GpuLease.host == host,
            GpuLease.device.in_(devices),
            or_(GpuLease.holder == holder, GpuLease.holder.is_(None)),
        )
        .values(
            heartbeat_at=func.now(),
            holder=holder,
            pid=os.getpid(),
            acquired_at=func.coalesce(GpuLease.acquired_at, func.now()),
        )
    )
    with engine.begin() as conn:
        return conn.execute(beat).rowcount


def release(engine: Engine, host: str, devices: tuple[int, ...], holder: str) -> None:
    """Free the holder's devices and wake the waiters."""
    with engine.begin() as conn:
        conn.execute(
            update(GpuLease)
            .where(GpuLease.host == host, GpuLease.device.in_(devices), GpuLease.holder == holder)
            .values(FREED)
        )
        notify(conn, host)


HeldRow = Row[int, str | None, int | None, dt.datetime | None, bool]


def held_rows(conn: Connection, host: str, stale_s: float) -> Sequence[HeldRow]:
    """(device, holder, pid, heartbeat_at, expired) of the host's held devices; expired: no beat for `stale_s`."""
    expired = GpuLease.heartbeat_at < func.now() - dt.timedelta(seconds=stale_s)
    query = select(GpuLease.device, GpuLease.holder, GpuLease.pid, GpuLease.heartbeat_at, expired.label("expired"))
    return conn.execute(query.where(GpuLease.host == host, GpuLease.holder.is_not(None))).all()


def free_if_unchanged(conn: Connection, host: str, device: int, holder: str, beat: dt.datetime | None) -> bool:
    """Free one device unless its holder beat (or changed) since it was read: a reclaim never races a heartbeat."""
    n = conn.execute(
        update(GpuLease)
        .where(
            GpuLease.host == host,
            GpuLease.device == device,
            GpuLease.holder == holder,
            GpuLease.heartbeat_at.is_not_distinct_from(beat),
        )
        .values(FREED)
    ).rowcount
    return bool(n)


def holders(engine: Engine, host: str) -> list[str]:
    """'GPU 0: <holder>' for each held device of the host, for error messages and logs."""
    query = (
        select(GpuLease.device, GpuLease.holder)
        .where(GpuLease.host == host, GpuLease.holder.is_not(None))
        .order_by(GpuLease.device)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [f"GPU {d}: {(h or '').split('|', 1)[-1]}" for d, h in rows]


def held_by_run(conn: Connection, run_id: int) -> Sequence[Row[str, int, str | None]]:
    """(host, device, holder) of the devices an eval run still holds."""
    query = select(GpuLease.host, GpuLease.device, GpuLease.holder).where(GpuLease.run_id == run_id)
    return conn.execute(query).all()


def free_run(conn: Connection, run_id: int) -> set[str]:
    """Free every device the run holds; returns the hosts whose waiters must be woken."""
    hosts = {host for host, _, _ in held_by_run(conn, run_id)}
    conn.execute(update(GpuLease).where(GpuLease.run_id == run_id).values(FREED))
    return hosts


def free_holder(conn: Connection, holder: str) -> set[str]:
    """Free every device whose holder label ends with `holder` (any node); returns the hosts to notify."""
    hosts = conn.execute(
        update(GpuLease).where(GpuLease.holder.like(f"%|{holder}")).values(FREED).returning(GpuLease.host)
    ).scalars()
    return set(hosts)
