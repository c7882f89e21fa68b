"""Open311's reads of requests: by number, by service code, status and period, and what a
request shows beside its own row (its latest public note, the names it refers to)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huying.directory.models import Category, Department
from huying.open311.schemas import RequestQuery
from huying.requests.models import Request, TimelineEntry


def by_numbers(session: Session, numbers: Collection[str]) -> Sequence[Request]:
    """The requests of these numbers that exist, newest first."""
    if not numbers:
        return []
    query = select(Request).where(Request.number.in_(sorted(numbers)))
    return session.scalars(query.order_by(Request.id.desc())).all()


def listed(session: Session, query: RequestQuery, *, limit: int) -> Sequence[Request]:
    """Requests of the query's service codes and statuses submitted within its period,
    newest first, at most `limit`."""
    q = select(Request)
    if query.service_codes:
        q = q.where(Request.category_code.in_(query.service_codes))
    if query.statuses == {"open"}:
        q = q.where(Request.closed_at.is_(None))
    elif query.statuses == {"closed"}:
        q = q.where(Request.closed_at.is_not(None))
    if query.start is not None:
        q = q.where(Request.created_at >= query.start)
    if query.end is not None:
        q = q.where(Request.created_at <= query.end)
    return session.scalars(q.order_by(Request.id.desc()).limit(limit)).all()


def latest_public_notes(
    session: Session, request_ids: Sequence[int], *, actions: Collection[str]
) -> dict[int, str]:
    """Each request's note of its latest public timeline row of one of these actions."""
    if not request_ids:
        return {}
    latest = (
        select(TimelineEntry.request_id, func.max(TimelineEntry.seq).label("seq"))
        .where(
            TimelineEntry.request_id.in_(request_ids),
            TimelineEntry.action.in_(sorted(actions)),
            TimelineEntry.public.is_(True),
            TimelineEntry.note.is_not(None),
        )
        .group_by(TimelineEntry.request_id)
        .subquery()
    )
    rows = session.execute(
        select(TimelineEntry.request_id, TimelineEntry.note).join(
            latest,
            (latest.c.request_id == TimelineEntry.request_id) & (latest.c.seq == TimelineEntry.seq),
        )
    )
    return {request_id: note for request_id, note in rows if note}


def department_names(session: Session, codes: Collection[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = session.execute(
        select(Department.code, Department.name).where(Department.code.in_(sorted(codes)))
    )
    return {code: name for code, name in rows}


def category_names(session: Session, codes: Collection[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = session.execute(
        select(Category.code, Category.name).where(Category.code.in_(sorted(codes)))
    )
    return {code: name for code, name in rows}
