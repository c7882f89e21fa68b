"""Firing due deadlines: claim the rows whose `next_fire_at` has come, and fire each step
(warning, overdue, every rung of the ladder, auto-close) once, in order, through the engine.

A tick claims a batch with FOR UPDATE SKIP LOCKED on PostgreSQL (the deadline and its
request both locked, so a concurrent action waits or is skipped), fires it, and moves
`next_fire_at` on in the same transaction: a second claim of the same step finds nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, inspect, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from huying.deadlines.models import Deadline
from huying.deadlines.service import next_fire_at
from huying.directory.models import Category, Department
from huying.errors import HuyingError
from huying.requests import service as requests
from huying.requests.models import Request
from huying.runtime import Runtime

log = logging.getLogger("huying.deadlines")
RETRY_LATER = timedelta(minutes=5)


@dataclass
class FireResult:
    claimed: int = 0
    fired: int = 0  # steps fired (warnings, overdue, rungs, auto-closes)


def claim(session: Session, *, now: datetime, batch: int) -> list[tuple[Deadline, Request]]:
    """Up to `batch` due deadlines with their requests, oldest first.

    On PostgreSQL the deadline ids are locked first (SKIP LOCKED, in a materialised CTE),
    then their requests: joining first would make the planner join and sort every due
    row before the LIMIT, which is slow exactly when many fall due at once."""
    due_now = (Deadline.next_fire_at.is_not(None), Deadline.next_fire_at <= now)
    if session.get_bind().dialect.name != "postgresql":  # SQLite: one writer at a time
        query = (
            select(Deadline, Request)
            .join(Request, Request.id == Deadline.request_id)
            .where(*due_now)
            .order_by(Deadline.next_fire_at, Deadline.id)
            .limit(batch)
        )
        return [(d, r) for d, r in session.execute(query)]
    due = (
        select(Deadline.id)
        .where(*due_now)
        .order_by(Deadline.next_fire_at, Deadline.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
        .cte("due")
        .prefix_with("MATERIALIZED")
    )
    query = (
        select(Deadline, Request)
        .join(due, due.c.id == Deadline.id)
        .join(Request, Request.id == Deadline.request_id)
        .order_by(Deadline.next_fire_at, Deadline.id)
        .with_for_update(of=Request, skip_locked=True)
    )
    return [(d, r) for d, r in session.execute(query)]


def recipients(
    departments: dict[str, Department], department_code: str | None, roles: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Leaders with one of `roles`, from the department up through its parents."""
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    code = department_code
    while code and code not in seen:
        seen.add(code)
        dept = departments.get(code)
        if dept is None:
            break
        for leader in dept.leaders or []:
            if leader.get("role") in roles:
                found.append({**leader, "department": dept.code, "department_name": dept.name})
        code = dept.parent_code
    return found


@dataclass
class _Batch:
    """What the steps of one claimed batch read, each read once: the directory's categories
    and departments, and the open deadlines of the batch's requests."""

    overrides: dict[str, dict[str, str]]
    departments: dict[str, Department]
    deadlines: dict[int, list[Deadline]]

    @classmethod
    def load(cls, session: Session, request_ids: list[int]) -> _Batch:
        open_rows: dict[int, list[Deadline]] = {i: [] for i in request_ids}
        for row in session.scalars(
            select(Deadline)
            .where(Deadline.request_id.in_(request_ids), Deadline.completed_at.is_(None))
            .order_by(Deadline.id)
        ):
            open_rows[row.request_id].append(row)
        return cls(
            overrides={
                c.code: dict(c.time_limits or {}) for c in session.scalars(select(Category))
            },
            departments={d.code: d for d in session.scalars(select(Department))},
            deadlines=open_rows,
        )


def _step(
    session: Session, rt: Runtime, d: Deadline, req: Request, due: datetime, batch: _Batch
) -> None:
    """Fire the one step that `next_fire_at` points at."""
    base = {"deadline": d.kind, "due_at": d.due_at.isoformat()}

    before = (d.warned_at, d.missed_at, d.status, d.rungs_fired)

    def fire(action: str, payload: dict[str, Any]) -> None:
        # the planner appends the deadlines it starts to this same list
        try:
            requests.system_fire(
                rt=rt,
                session=session,
                req=req,
                action=action,
                payload=payload,
                now=due,
                overrides=batch.overrides.get(req.category_code, {}),
                deadlines=batch.deadlines.setdefault(req.id, []),
            )
        except HuyingError:  # refused before anything was written: the step stays to do
            d.warned_at, d.missed_at, d.status, d.rungs_fired = before
            raise

    if d.warned_at is None and d.warn_at is not None and d.warn_at < d.due_at:
        d.warned_at = due
        fire("warn", base)
    elif d.missed_at is None:
        d.missed_at = d.due_at
        d.status = "missed"
        fire("auto_close" if d.kind == "feedback" else "overdue", base)
    else:
        rung = rt.settings.escalation[d.rungs_fired]
        d.rungs_fired += 1
        notify = [
            {
                "role": role,
                "leaders": recipients(batch.departments, req.lead_department_code, (role,)),
            }
            for role in rung.notify
        ]
        fire("escalate", {**base, "level": rung.level, "rung": d.rungs_fired, "notify": notify})


def fire_one(
    session: Session,
    rt: Runtime,
    d: Deadline,
    req: Request,
    *,
    now: datetime,
    batch: _Batch | None = None,
) -> int:
    """Every step of one deadline that has come by `now`, in order; returns how many fired."""
    batch = batch or _Batch.load(session, [req.id])
    fired = 0
    while (
        due := next_fire_at(d, settings=rt.settings, calendar=rt.calendar)
    ) is not None and due <= now:
        _step(session, rt, d, req, due, batch)
        fired += 1
    d.next_fire_at = next_fire_at(d, settings=rt.settings, calendar=rt.calendar)
    d.version += 1
    return fired


def write_requests(session: Session, reqs: list[Request]) -> None:
    """UPDATE the batch's changed requests in one executemany per set of changed columns.

    The unit of work would send one UPDATE per request, because `version` is a version
    counter and each row's count of matches must be checked on its own: 10,000 round trips
    when 10,000 deadlines fall due at once. Here the claim holds every one of these rows
    locked (FOR UPDATE), so nothing can have changed them; the UPDATE still names the version
    it read, and a total count of matches short of the batch fails the whole transaction as
    the unit of work would. The values then become the rows' committed state, and the flush
    that follows has no request left to write."""
    groups: dict[tuple[str, ...], list[tuple[Request, dict[str, Any]]]] = {}
    for req in dict.fromkeys(reqs):  # each once, in order
        state = inspect(req)
        # committed_state: the attributes changed since load, with their loaded values
        changed = {
            key: state.dict.get(key)
            for key, before in state.committed_state.items()
            if key in _COLUMNS and state.dict.get(key) != before
        }
        if changed:
            groups.setdefault(tuple(sorted(changed)), []).append((req, changed))
    table = cast(Table, Request.__table__)
    connection = session.connection()  # this transaction; no autoflush
    for columns, members in groups.items():
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"), table.c.version == bindparam("_read"))
            .values({c: bindparam(c) for c in columns} | {"version": bindparam("_version")})
        )
        rows = [
            {**changed, "_id": req.id, "_read": req.version, "_version": req.version + 1}
            for req, changed in members
        ]
        matched = connection.execute(statement, rows).rowcount
        if matched != len(rows):
            raise StaleDataError(
                f"UPDATE requests matched {matched} of {len(rows)} rows of a claimed batch"
            )
        for req, changed in members:
            for key, value in changed.items():
                set_committed_value(req, key, value)
            set_committed_value(req, "version", req.version + 1)


_COLUMNS = frozenset(c.key for c in Request.__mapper__.column_attrs) - {"id", "version"}


def fire_due(rt: Runtime, *, now: datetime, batch: int | None = None) -> FireResult:
    """Claim and fire due deadlines in batches until none is due.

    The engine refuses before anything of a step is written, so a refused deadline needs
    no savepoint: it is logged and looked at again later, and the batch flushes once."""
    size = batch or rt.settings.worker.batch_size
    result = FireResult()
    while True:
        with rt.transaction() as session:
            rows = claim(session, now=now, batch=size)
            loaded = _Batch.load(session, sorted({req.id for _, req in rows})) if rows else None
            for d, req in rows:
                try:
                    result.fired += fire_one(session, rt, d, req, now=now, batch=loaded)
                except HuyingError as exc:  # the workflow refused: log, look again later
                    log.error("deadline %s of request %s not fired: %s", d.id, req.id, exc.detail)
                    d.next_fire_at = now + RETRY_LATER
            write_requests(session, [req for _, req in rows])
            result.claimed += len(rows)
        if len(rows) < size:
            return result
