"""Firing due deadlines: claim the rows whose `next_fire_at` has come, and fire each step
(warning, overdue, every rung of the ladder, auto-close) once, in order, through the engine,
as a system action on the deadline's request.

The end of an approved suspension is a step too: the suspension's timer falls due and the
request resumes (`resume`, as the system).

A tick claims a batch with FOR UPDATE SKIP LOCKED on PostgreSQL (the deadline and its
request both locked, so a concurrent action waits or is skipped), fires it, and moves
`next_fire_at` on in the same transaction: a second claim of the same step finds nothing.

It lives with the requests because every step is a request's action: the requests use the
deadlines (`huying.deadlines.service` plans and schedules the rows), never the other way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from huying.deadlines import service as deadlines
from huying.deadlines.models import Deadline
from huying.directory import service as directory
from huying.directory.models import Department
from huying.errors import HuyingError
from huying.requests import repository as repo
from huying.requests import service as requests
from huying.requests.models import Request
from huying.runtime import Runtime

log = logging.getLogger("huying.deadlines")
RETRY_LATER = timedelta(minutes=5)


@dataclass
class FireResult:
    claimed: int = 0
    fired: int = 0  # steps fired (warnings, overdue, rungs, auto-closes)


@dataclass
class _Batch:
    """What the steps of one claimed batch read, each read once: the directory's categories
    and departments, and the open deadlines of the batch's requests."""

    overrides: dict[str, dict[str, str]]
    departments: dict[str, Department]
    deadlines: dict[int, list[Deadline]]

    @classmethod
    def load(cls, session: Session, request_ids: list[int]) -> _Batch:
        open_rows = deadlines.open_of_requests(session=session, request_ids=request_ids)
        return cls(
            overrides={
                c.code: dict(c.time_limits or {}) for c in directory.categories(session=session)
            },
            departments={d.code: d for d in directory.departments(session=session)},
            deadlines=open_rows,
        )


def _step(
    session: Session, rt: Runtime, d: Deadline, req: Request, due: datetime, batch: _Batch
) -> None:
    """Fire the one step that `next_fire_at` points at: ask the engine first (it refuses
    before anything is written), then mark the deadline and apply the outcome."""
    step = deadlines.next_step(d, settings=rt.settings)
    payload: dict[str, Any] = {"deadline": d.kind, "due_at": d.due_at.isoformat()}
    if step.rung is not None:  # who the rung notifies is added where every escalation is
        payload |= {"level": step.rung.level, "rung": step.number}
    if d.task_id is not None:  # a task's own step names the task and its department
        task = next((t for t in req.tasks if t.id == d.task_id), None)
        payload |= {"task_id": d.task_id, "department": task.department_code if task else None}
    # the planner appends the deadlines it starts to this same list
    open_rows = batch.deadlines.setdefault(req.id, [])
    outcome = requests.system_outcome(
        rt=rt, req=req, action=step.action, payload=payload, now=due, deadlines=open_rows
    )
    deadlines.mark_fired(d, step, due=due)
    requests.apply_system(
        rt=rt,
        session=session,
        req=req,
        outcome=outcome,
        overrides=batch.overrides.get(req.category_code, {}),
        deadlines=open_rows,
        departments=batch.departments,
    )


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
        due := deadlines.next_fire_at(d, settings=rt.settings, calendar=rt.calendar)
    ) is not None and due <= now:
        _step(session, rt, d, req, due, batch)
        fired += 1
    d.next_fire_at = deadlines.next_fire_at(d, settings=rt.settings, calendar=rt.calendar)
    d.version += 1
    return fired


def fire_due(rt: Runtime, *, now: datetime, batch: int | None = None) -> FireResult:
    """Claim and fire due deadlines in batches until none is due.

    The engine refuses before anything of a step is written, so a refused deadline needs
    no savepoint: it is logged and looked at again later, and the batch flushes once."""
    size = batch or rt.settings.worker.batch_size
    result = FireResult()
    while True:
        with rt.transaction() as session:
            rows = repo.claim_due(session, now=now, batch=size)
            loaded = _Batch.load(session, sorted({req.id for _, req in rows})) if rows else None
            for d, req in rows:
                try:
                    result.fired += fire_one(session, rt, d, req, now=now, batch=loaded)
                except HuyingError as exc:  # the workflow refused: log, look again later
                    log.error("deadline %s of request %s not fired: %s", d.id, req.id, exc.detail)
                    d.next_fire_at = now + RETRY_LATER
            repo.write_batch(session, [req for _, req in rows])
            result.claimed += len(rows)
        if len(rows) < size:
            return result
