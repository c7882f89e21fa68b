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
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huying.deadlines.models import Deadline
from huying.deadlines.service import next_fire_at, open_deadlines
from huying.directory import repository as directory
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
    query = (
        select(Deadline, Request)
        .join(Request, Request.id == Deadline.request_id)
        .where(Deadline.next_fire_at.is_not(None), Deadline.next_fire_at <= now)
        .order_by(Deadline.next_fire_at, Deadline.id)
        .limit(batch)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [(d, r) for d, r in session.execute(query)]


def recipients(
    session: Session, department_code: str | None, roles: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Leaders with one of `roles`, from the department up through its parents."""
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    code = department_code
    while code and code not in seen:
        seen.add(code)
        dept = directory.department(session, code)
        if dept is None:
            break
        for leader in dept.leaders or []:
            if leader.get("role") in roles:
                found.append({**leader, "department": dept.code, "department_name": dept.name})
        code = dept.parent_code
    return found


@dataclass
class _Loaded:
    """What every step of one deadline needs, read once."""

    overrides: dict[str, str]
    deadlines: list[Deadline]


def _step(
    session: Session, rt: Runtime, d: Deadline, req: Request, due: datetime, ctx: _Loaded
) -> None:
    """Fire the one step that `next_fire_at` points at."""
    base = {"deadline": d.kind, "due_at": d.due_at.isoformat()}

    def fire(action: str, payload: dict[str, Any]) -> None:
        requests.system_fire(
            rt=rt,
            session=session,
            req=req,
            action=action,
            payload=payload,
            now=due,
            overrides=ctx.overrides,
            deadlines=ctx.deadlines,
        )

    if d.warned_at is None and d.warn_at is not None and d.warn_at < d.due_at:
        d.warned_at = due
        fire("warn", base)
    elif d.missed_at is None:
        d.missed_at = d.due_at
        d.status = "missed"
        action = "auto_close" if d.kind == "feedback" else "overdue"
        fire(action, base)
    else:
        rung = rt.settings.escalation[d.rungs_fired]
        d.rungs_fired += 1
        notify = [
            {"role": role, "leaders": recipients(session, req.lead_department_code, (role,))}
            for role in rung.notify
        ]
        payload = {**base, "level": rung.level, "rung": d.rungs_fired, "notify": notify}
        requests.system_fire(
            rt=rt, session=session, req=req, action="escalate", payload=payload, now=due
        )


def fire_one(session: Session, rt: Runtime, d: Deadline, req: Request, *, now: datetime) -> int:
    """Every step of one deadline that has come by `now`, in order; returns how many fired."""
    fired = 0
    loaded: _Loaded | None = None
    while (
        due := next_fire_at(d, settings=rt.settings, calendar=rt.calendar)
    ) is not None and due <= now:
        if loaded is None:
            category = directory.category(session, req.category_code)
            # the planner appends the deadlines it starts to this same list
            loaded = _Loaded(
                overrides=dict(category.time_limits) if category else {},
                deadlines=open_deadlines(session, req.id),
            )
        _step(session, rt, d, req, due, loaded)
        fired += 1
    d.next_fire_at = next_fire_at(d, settings=rt.settings, calendar=rt.calendar)
    d.version += 1
    return fired


def fire_due(rt: Runtime, *, now: datetime, batch: int | None = None) -> FireResult:
    """Claim and fire due deadlines in batches until none is due."""
    size = batch or rt.settings.worker.batch_size
    result = FireResult()
    while True:
        with rt.transaction() as session:
            rows = claim(session, now=now, batch=size)
            for d, req in rows:
                try:
                    with session.begin_nested():
                        result.fired += fire_one(session, rt, d, req, now=now)
                except HuyingError as exc:  # the workflow refused: log, look again later
                    log.error("deadline %s of request %s not fired: %s", d.id, req.id, exc.detail)
                    d.next_fire_at = now + RETRY_LATER
            result.claimed += len(rows)
        if len(rows) < size:
            return result
