"""Deadline queries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Select, Table, func, inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from huying.db import among, update_versioned
from huying.deadlines.models import TASK, Deadline, WorkerHeartbeat


def open_of(session: Session, request_id: int) -> list[Deadline]:
    """One request's open deadlines, oldest first."""
    return list(
        session.scalars(
            select(Deadline)
            .where(Deadline.request_id == request_id, Deadline.completed_at.is_(None))
            .order_by(Deadline.id)
        )
    )


def open_by_request(
    session: Session,
    request_ids: Sequence[int],
    *,
    loaded: Sequence[Deadline] = (),
    tasks: bool = True,
) -> dict[int, list[Deadline]]:
    """The open deadlines of each of these requests, oldest first. The open ones of
    `loaded` (deadlines of these requests the caller holds already) are not read again.
    Without `tasks`, the deadlines of the requests' tasks are left out, but for those of
    `loaded`."""
    found: dict[int, list[Deadline]] = {i: [] for i in request_ids}
    held = [d for d in loaded if d.completed_at is None]
    dialect = session.get_bind().dialect.name
    query = _open_of(request_ids, dialect)
    if not tasks:  # (by kind: on task_id, SQLite would walk its index over every NULL)
        query = query.where(Deadline.kind != TASK)
    if held:
        query = query.where(~among(Deadline.id, [d.id for d in held], dialect=dialect, name="held"))
    for row in [*session.scalars(query), *held]:
        found[row.request_id].append(row)
    for rows in found.values():
        rows.sort(key=lambda d: d.id)
    return found


def open_of_tasks(session: Session, request_ids: Sequence[int]) -> list[Deadline]:
    """The open deadlines of these requests' tasks, read as they stand in the database (a
    deadline the session holds stays as it holds it), without flushing what it holds."""
    query = _open_of(request_ids, session.get_bind().dialect.name).where(Deadline.kind == TASK)
    with session.no_autoflush:
        return list(session.scalars(query.order_by(Deadline.id)))


def _open_of(request_ids: Sequence[int], dialect: str) -> Select[Deadline]:
    """The open deadlines of these requests."""
    return select(Deadline).where(
        among(Deadline.request_id, request_ids, dialect=dialect, name="request_ids"),
        Deadline.completed_at.is_(None),
    )


def all_by_request(session: Session, request_ids: Sequence[int]) -> dict[int, list[Deadline]]:
    """Every deadline of each of these requests, open or ended, oldest first."""
    found: dict[int, list[Deadline]] = {i: [] for i in request_ids}
    if request_ids:
        rows = session.scalars(
            select(Deadline).where(Deadline.request_id.in_(request_ids)).order_by(Deadline.id)
        )
        for d in rows:
            found[d.request_id].append(d)
    return found


@cache
def _columns() -> frozenset[str]:
    """The deadline's column attributes an UPDATE may write (read when first needed)."""
    return frozenset(c.key for c in inspect(Deadline).column_attrs) - {"id"}


def write_changed(session: Session, rows: Iterable[Deadline], *, settle: bool = True) -> int:
    """UPDATE these loaded deadlines' changed columns, one statement per set of changed
    columns (`huying.db.update_versioned`), and (with `settle`) make the values their committed state, so that a flush has
    nothing left to write of them; returns how many were written.

    The unit of work would collect and send them row by row, and its bookkeeping per row
    cost more than the firing itself when thousands fall due at once. A firing batch holds
    its deadlines locked (claimed FOR UPDATE), so nothing else writes them meanwhile; the
    UPDATE still names the version read, and a count of matches short of the rows fails the
    transaction, as a lost update would anywhere else."""
    columns_of = _columns()
    groups: dict[tuple[str, ...], list[tuple[Deadline, dict[str, Any]]]] = {}
    for d in dict.fromkeys(rows):  # each once, in order
        state = instance_state(d)
        if state.key is None:  # new: the flush inserts it
            continue
        # committed_state: the attributes changed since load, with their loaded values
        changed = {
            key: state.dict.get(key)
            for key, before in state.committed_state.items()
            if key in columns_of and state.dict.get(key) != before
        }
        if changed:
            read = state.committed_state.get("version", d.version)
            groups.setdefault(tuple(sorted(changed)), []).append((d, changed | {"_read": read}))
    table = cast(Table, Deadline.__table__)
    connection = session.connection()  # this transaction; no autoflush
    written = 0
    for columns, members in groups.items():
        params = [{**changed, "_id": d.id} for d, changed in members]
        matched = update_versioned(connection, table, columns, params)
        if matched != len(params):
            raise StaleDataError(
                f"UPDATE deadlines matched {matched} of {len(params)} rows of a claimed batch"
            )
        for d, changed in members if settle else ():
            for key in changed:
                if key != "_read":
                    set_committed_value(d, key, getattr(d, key))
        written += len(params)
    return written


def next_fire_after(session: Session, moment: datetime) -> datetime | None:
    """The earliest `next_fire_at` after `moment`: one step down the partial index."""
    return session.scalar(
        select(func.min(Deadline.next_fire_at)).where(
            Deadline.next_fire_at.is_not(None), Deadline.next_fire_at > moment
        )
    )


# ---- the workers' heartbeats ---------------------------------------------------------------


def heartbeats(session: Session, *, limit: int) -> Sequence[WorkerHeartbeat]:
    """The workers' heartbeats, the most recent tick first."""
    return session.scalars(
        select(WorkerHeartbeat).order_by(WorkerHeartbeat.last_tick_at.desc()).limit(limit)
    ).all()


def ticks(session: Session) -> tuple[int, datetime | None]:
    """How many workers have ever ticked, and the most recent tick of any."""
    workers = session.scalar(select(func.count()).select_from(WorkerHeartbeat))
    last_tick = session.scalar(select(func.max(WorkerHeartbeat.last_tick_at)))
    return int(workers or 0), last_tick
