"""Deadline queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huying.deadlines.models import Deadline, WorkerHeartbeat


def open_of(session: Session, request_id: int) -> list[Deadline]:
    """One request's open deadlines, oldest first."""
    return list(
        session.scalars(
            select(Deadline)
            .where(Deadline.request_id == request_id, Deadline.completed_at.is_(None))
            .order_by(Deadline.id)
        )
    )


def open_by_request(session: Session, request_ids: Sequence[int]) -> dict[int, list[Deadline]]:
    """The open deadlines of each of these requests, oldest first."""
    found: dict[int, list[Deadline]] = {i: [] for i in request_ids}
    for row in session.scalars(
        select(Deadline)
        .where(Deadline.request_id.in_(request_ids), Deadline.completed_at.is_(None))
        .order_by(Deadline.id)
    ):
        found[row.request_id].append(row)
    return found


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
